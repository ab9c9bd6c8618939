"""The `dtmm` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dtmm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dtmm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="load, compile and run a model end to end")
    demo.add_argument("model", nargs="?", help=".tflite file (default: the bundled digits model)")
    demo.add_argument("--data", help=".npz with x (model input dtype) and y labels")

    comp = sub.add_parser("compile", help="compile a .tflite model to a dtmm blob")
    comp.add_argument("model")
    comp.add_argument("-o", "--output", required=True)

    exp = sub.add_parser("export", help="compile a .tflite model into a C header for firmware")
    exp.add_argument("model")
    exp.add_argument("-o", "--output", required=True, help="header to write, e.g. model.h")
    exp.add_argument("--name", default="dtmm_model", help="C name of the array")
    exp.add_argument("--sparse", default="auto", choices=["auto", "always", "never", "csr"])

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run

            run(args.model, args.data)
        elif args.command == "compile":
            from .compiler import compile
            from .loader import load
            from .runtime import Runtime

            blob = compile(load(args.model))
            Path(args.output).write_bytes(blob)
            arena = Runtime(blob).arena_size
            print(f"wrote {args.output}: {len(blob):,} bytes, arena {arena:,} bytes")
        elif args.command == "export":
            from .compiler import compile
            from .export import export_c
            from .loader import load

            blob = compile(load(args.model), sparse=args.sparse)
            export_c(blob, args.output, args.name)
            print(f"wrote {args.output}: {len(blob):,} byte blob '{args.name}'")
    except (ValueError, FileNotFoundError) as e:
        print(f"dtmm: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
