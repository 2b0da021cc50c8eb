"Shared helpers for the command-line tests: run a salt_nb console script as a user would."
import os, shutil, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = {'salt_score': 'salt_nb.metrics', 'salt_train': 'salt_nb.train', 'salt_predict': 'salt_nb.inference',
         'salt_mosaic': 'salt_nb.mosaic', 'salt_demo': 'salt_nb.demo', 'salt_synth': 'salt_nb.synth'}

def cli_cmd(name, tmp_path) -> list:
    "The installed console script `name`, else a script file calling its function (before `pip install -e .`)."
    exe = Path(sys.executable).parent/name
    if exe.exists(): return [str(exe)]
    if shutil.which(name): return [shutil.which(name)]
    fn = 'synth_cli' if name == 'salt_synth' else name
    script = tmp_path/f'{name}_script.py'  # call_parse parses argv only when run as a script file
    script.write_text(f'from {ENTRY[name]} import {fn}\n{fn}()\n')
    return [sys.executable, str(script)]

def cli_env(**env) -> dict:
    "The environment of a command-line test: this checkout's salt_nb first on the path, quiet warnings, `env` added."
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
            'PYTHONWARNINGS': 'ignore', 'NO_ALBUMENTATIONS_UPDATE': '1', **{k: str(v) for k, v in env.items()}}

def run_cli(name, tmp_path, *args, timeout=300, **env):
    "Run console script `name` with `args` on this checkout's salt_nb; return the CompletedProcess (text output)."
    return subprocess.run([*cli_cmd(name, tmp_path), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**env))

def tiny_synth(tmp_path_factory, section_tiles=(4, 2)):
    "A tiny synthetic Kaggle-layout folder: 2 sections of `section_tiles` tiles, half of them test."
    from salt_nb.synth import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('synth')/'tgs', n_sections=2, section_tiles=section_tiles, progress=False)
