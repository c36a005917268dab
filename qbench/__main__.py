from qbench.cli import main

if __name__ == "__main__":  # not when a child process (spawn: `--jobs` workers) re-imports the main module
    raise SystemExit(main())
