"""Runs one WASI preview1 command with the wasmtime wheel (the engine runwasi's wasmtime shim embeds).

argv[1] is a JSON spec: {"module", "args", "env": ["K=V"], "preopens": [{"guest", "host"}], "cache": toml or null}.
stdio is inherited; the exit status is the module's, 134 when it trapped (what the wasmtime CLI reports).
"""
import json
import sys

import wasmtime

TRAP_EXIT_CODE = 134


def main() -> int:
    spec = json.loads(sys.argv[1])
    config = wasmtime.Config()
    if spec.get("cache"):
        config.cache = spec["cache"]
    engine = wasmtime.Engine(config)
    wasi = wasmtime.WasiConfig()
    wasi.argv = spec["args"]
    wasi.env = [item.split("=", 1) for item in spec["env"]]
    for preopen in spec["preopens"]:
        wasi.preopen_dir(preopen["host"], preopen["guest"])
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, spec["module"])
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        sys.stderr.write(f"wasmtime: {spec['args'][0]} trapped: {trap.message}\n")
        return TRAP_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
