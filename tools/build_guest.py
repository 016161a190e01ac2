#!/usr/bin/env python3
"""Build the firmware (roms/build/bios.bin) and the guest kernels
(guest/build/<name>.elf) with the host gcc in 32-bit freestanding mode.

Targets:

* ``bios`` -- every ``*.c``/``*.S`` in ``roms/`` plus the toolkit files the
  firmware shares (serial, console, string, pci), linked with
  ``roms/link.ld`` and cut to exactly 128 KiB.
* one target per guest: a directory ``guest/<name>/`` holding ``main.c``.
  Its sources are every ``*.c``/``*.S`` in that directory; it is linked at
  1 MiB with ``guest/link.ld`` together with the toolkit ``guest/lib`` and
  any extra libraries named in an optional ``guest/<name>/build.cfg``::

      [build]
      libs = qxl          # more directories under guest/ (no main.c there)
      cflags = -DDEBUG    # extra compiler flags for this guest's own files

A ``gen_<name>.py`` script in a guest or library directory generates
``guest/build/gen/<name>.h`` before compiling (run with the project's
virtualenv Python, as ``gen_<name>.py OUTDIR``, when the header is missing
or older than the script); ``guest/build/gen`` is on the include path.

Builds are incremental (gcc dependency files plus a record of each command
line), serialised by a lock file, and outputs are replaced atomically.

Command line: ``build_guest.py [targets...] [--clean] [--list] [-v]``.
From Python: ``build(targets=None) -> dict[str, Path]``.
"""

from __future__ import annotations

import argparse
import configparser
import fcntl
import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("build_guest")

ROOT = Path(__file__).resolve().parent.parent
GUEST_DIR = ROOT / "guest"
ROMS_DIR = ROOT / "roms"
GUEST_BUILD = GUEST_DIR / "build"
GEN_DIR = GUEST_BUILD / "gen"
ROMS_BUILD = ROMS_DIR / "build"
BIOS_SIZE = 128 * 1024

# Toolkit files the firmware links (it has its own start-up and no IDT).
BIOS_LIB_SOURCES = ("serial.c", "console.c", "string.c", "pci.c")
NOT_GUESTS = {"lib", "build"}

# i686 integer code only: no SSE/x87 in generated code, so interrupt
# handlers never touch FPU state and Unicorn needs no FPU/SSE set-up.
CFLAGS = [
    "-m32", "-march=i686", "-mtune=generic", "-mgeneral-regs-only",
    "-ffreestanding", "-fno-pie", "-fno-pic", "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-common",
    "-fcf-protection=none",
    "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
]
ASFLAGS = ["-m32", "-march=i686", "-g"]
LDFLAGS = [
    "-m32", "-nostdlib", "-static", "-no-pie",
    "-Wl,--build-id=none", "-Wl,-z,max-page-size=0x1000", "-Wl,-z,noexecstack",
    "-Wl,--no-warn-rwx-segments",
]


class BuildError(RuntimeError):
    """A build could not be done; the message says why in one line where it
    can (missing tools), or carries the compiler's output."""


@dataclass
class Target:
    name: str
    kind: str  # "bios" or "guest"
    output: Path
    sources: list[Path]
    link_script: Path
    obj_root: Path
    includes: list[Path]
    extra_cflags: list[str] = field(default_factory=list)
    own_dirs: set[Path] = field(default_factory=set)  # where extra_cflags apply
    generators: list[Path] = field(default_factory=list)  # gen_<name>.py scripts


# --------------------------------------------------------------------------
# toolchain checks


def check_toolchain() -> dict[str, str]:
    """Paths of gcc and objcopy; raises BuildError (one line, naming the
    Debian package) when a tool or 32-bit gcc support is missing."""
    tools = {}
    for name, package in (("gcc", "gcc"), ("objcopy", "binutils")):
        path = shutil.which(name)
        if path is None:
            raise BuildError(f"{name} not found: install it (Debian: apt-get install {package})")
        tools[name] = path
    probe = subprocess.run(
        [tools["gcc"], "-m32", "-print-libgcc-file-name"],
        capture_output=True, text=True, timeout=30,
    )
    libgcc = probe.stdout.strip()
    if probe.returncode != 0 or not libgcc or not Path(libgcc).is_file():
        raise BuildError(
            "gcc cannot build 32-bit code (no 32-bit libgcc): "
            "install gcc-multilib (Debian: apt-get install gcc-multilib)"
        )
    return tools


# --------------------------------------------------------------------------
# targets


def _sources_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".c", ".S") and p.is_file())


def guest_names() -> list[str]:
    """Every directory under guest/ that holds a main.c, sorted."""
    if not GUEST_DIR.is_dir():
        return []
    return sorted(
        d.name for d in GUEST_DIR.iterdir()
        if d.is_dir() and d.name not in NOT_GUESTS and not d.name.startswith(".")
        and (d / "main.c").is_file()
    )


def target_names() -> list[str]:
    """All buildable targets: "bios" and the guests."""
    return ["bios", *guest_names()]


def _guest_config(directory: Path) -> tuple[list[str], list[str]]:
    cfg_path = directory / "build.cfg"
    if not cfg_path.exists():
        return [], []
    cfg = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        cfg.read(cfg_path)
    except configparser.Error as exc:
        raise BuildError(f"{cfg_path.relative_to(ROOT)}: {exc}") from exc
    section = cfg["build"] if cfg.has_section("build") else {}
    libs = section.get("libs", "").replace(",", " ").split()
    cflags = shlex.split(section.get("cflags", ""))
    return libs, cflags


def _make_target(name: str) -> Target:
    if name == "bios":
        lib = GUEST_DIR / "lib"
        return Target(
            name="bios", kind="bios", output=ROMS_BUILD / "bios.bin",
            sources=_sources_in(ROMS_DIR) + [lib / s for s in BIOS_LIB_SOURCES],
            link_script=ROMS_DIR / "link.ld", obj_root=ROMS_BUILD / "obj",
            includes=[ROMS_DIR, GUEST_DIR],
        )
    directory = GUEST_DIR / name
    if name in NOT_GUESTS or not (directory / "main.c").is_file():
        known = ", ".join(target_names())
        raise BuildError(f"unknown target {name!r} (known: {known})")
    libs, cflags = _guest_config(directory)
    sources = _sources_in(directory)
    generators = sorted(directory.glob("gen_*.py"))
    for lib_name in ["lib", *libs]:
        lib_dir = GUEST_DIR / lib_name
        if not lib_dir.is_dir() or (lib_dir / "main.c").exists():
            raise BuildError(f"guest {name}: library {lib_name!r} is not a directory "
                             "under guest/ without main.c")
        sources += _sources_in(lib_dir)
        generators += sorted(lib_dir.glob("gen_*.py"))
    return Target(
        name=name, kind="guest", output=GUEST_BUILD / f"{name}.elf", sources=sources,
        link_script=GUEST_DIR / "link.ld", obj_root=GUEST_BUILD / "obj",
        includes=[GUEST_DIR, GEN_DIR], extra_cflags=cflags, own_dirs={directory},
        generators=generators,
    )


# --------------------------------------------------------------------------
# incremental machinery


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return -1.0


def _deps_from_d(dfile: Path) -> list[Path] | None:
    try:
        text = dfile.read_text()
    except FileNotFoundError:
        return None
    text = text.replace("\\\n", " ")
    deps: list[Path] = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        _, rhs = line.split(":", 1)
        deps += [Path(p) for p in rhs.split()]
    return deps


def _stale(output: Path, inputs: Iterable[Path], cmd: list[str]) -> bool:
    out_time = _mtime(output)
    if out_time < 0:
        return True
    cmd_file = output.with_name(output.name + ".cmd")
    try:
        if cmd_file.read_text() != shlex.join(cmd):
            return True
    except FileNotFoundError:
        return True
    return any(_mtime(p) < 0 or _mtime(p) > out_time for p in inputs)


def _record(output: Path, cmd: list[str]) -> None:
    output.with_name(output.name + ".cmd").write_text(shlex.join(cmd))


def _run(cmd: list[str], what: str, verbose: bool) -> None:
    if verbose:
        log.info("%s", shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise BuildError(f"{what} failed:\n{detail}")
    if proc.stderr.strip():  # compiler warnings, with or without -v
        log.warning("%s:\n%s", what, proc.stderr.rstrip())


@contextmanager
def _build_lock() -> Iterator[None]:
    GUEST_BUILD.mkdir(parents=True, exist_ok=True)
    with open(GUEST_BUILD / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# generated headers


def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _generate(script: Path, verbose: bool) -> None:
    out = GEN_DIR / (script.stem.removeprefix("gen_") + ".h")
    if _mtime(out) >= _mtime(script):
        return
    GEN_DIR.mkdir(parents=True, exist_ok=True)
    _run([_python(), str(script.relative_to(ROOT)), str(GEN_DIR)],
         f"generating {out.relative_to(ROOT)}", verbose)


# --------------------------------------------------------------------------
# compile and link


def _object_for(t: Target, src: Path) -> Path:
    rel = src.relative_to(ROOT)
    suffix = ".S.o" if src.suffix == ".S" else ".o"
    return t.obj_root / rel.parent / (rel.stem + suffix)


def _compile_cmd(tools: dict[str, str], t: Target, src: Path, obj: Path) -> list[str]:
    flags = ASFLAGS if src.suffix == ".S" else CFLAGS
    extra = t.extra_cflags if src.parent in t.own_dirs else []
    incs = [f"-I{p.relative_to(ROOT)}" for p in t.includes]
    dfile = obj.with_suffix(obj.suffix + ".d")
    return [tools["gcc"], *flags, *extra, *incs, "-MMD", "-MP", "-MF", str(dfile),
            "-c", str(src.relative_to(ROOT)), "-o", str(obj)]


def _compile_one(tools: dict[str, str], t: Target, src: Path, verbose: bool) -> tuple[Path, bool]:
    obj = _object_for(t, src)
    cmd = _compile_cmd(tools, t, src, obj)
    deps = _deps_from_d(obj.with_suffix(obj.suffix + ".d"))
    inputs = [src] + [(ROOT / d) for d in (deps or [])]
    if deps is not None and not _stale(obj, inputs, cmd):
        return obj, False
    obj.parent.mkdir(parents=True, exist_ok=True)
    _run(cmd, f"compiling {src.relative_to(ROOT)}", verbose)
    _record(obj, cmd)
    return obj, True


def _link(tools: dict[str, str], t: Target, objs: list[Path], verbose: bool) -> bool:
    elf = t.output if t.kind == "guest" else t.output.with_suffix(".elf")
    mapfile = elf.with_suffix(".map")
    tmp = elf.with_name(elf.name + ".tmp")
    cmd = [tools["gcc"], *LDFLAGS, "-T", str(t.link_script.relative_to(ROOT)),
           f"-Wl,-Map,{mapfile}", "-o", str(tmp), *map(str, objs), "-lgcc"]
    record_cmd = [c.replace(str(tmp), str(elf)) for c in cmd]
    if not _stale(t.output, [*objs, t.link_script], record_cmd):
        return False
    _run(cmd, f"linking {t.name}", verbose)
    os.replace(tmp, elf)
    if t.kind == "bios":
        tmp_bin = t.output.with_name(t.output.name + ".tmp")
        _run([tools["objcopy"], "-O", "binary", str(elf), str(tmp_bin)],
             "objcopy bios", verbose)
        size = tmp_bin.stat().st_size
        if size != BIOS_SIZE:
            tmp_bin.unlink()
            raise BuildError(f"bios image is {size} bytes, expected exactly {BIOS_SIZE}")
        os.replace(tmp_bin, t.output)
    _record(t.output, record_cmd)
    return True


def build(targets: Iterable[str] | None = None, *, verbose: bool = False,
          jobs: int = 2) -> dict[str, Path]:
    """Build `targets` (default: all) if their sources changed; returns
    {target name: output path}.  Raises BuildError."""
    names = list(targets) if targets is not None else target_names()
    tools = check_toolchain()
    plan = [_make_target(n) for n in names]
    results: dict[str, Path] = {}
    with _build_lock():
        for t in plan:
            t.output.parent.mkdir(parents=True, exist_ok=True)
            for script in t.generators:
                _generate(script, verbose)
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                done = list(pool.map(lambda s, t=t: _compile_one(tools, t, s, verbose),
                                     t.sources))
            objs = [o for o, _ in done]
            rebuilt = _link(tools, t, objs, verbose)
            if verbose or rebuilt:
                state = "built" if rebuilt else "up to date"
                log.info("%s %s", state, t.output.relative_to(ROOT))
            results[t.name] = t.output
    return results


def clean() -> None:
    """Remove both build directories."""
    for d in (GUEST_BUILD, ROMS_BUILD):
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="targets to build (default: all)")
    ap.add_argument("--clean", action="store_true", help="remove build outputs first")
    ap.add_argument("--list", action="store_true", help="list targets and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="show commands")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="build_guest: %(message)s")
    if args.list:
        print("\n".join(target_names()))
        return 0
    if args.clean:
        clean()
    try:
        outputs = build(args.targets or None, verbose=args.verbose)
    except BuildError as exc:
        print(f"build_guest: error: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        for name, path in outputs.items():
            print(f"{name}\t{path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
