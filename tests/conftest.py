"Shared helpers for the command-line tests: run a salt_nb console script as a user would (through pipes or in a terminal)."
import configparser, errno, fcntl, os, re, select, shutil, signal, struct, subprocess, sys, termios, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def console_scripts(settings=REPO/'settings.ini') -> dict:
    "The console scripts that settings.ini declares, as {name: (module, function)}."
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(settings)
    scripts = {}
    for entry in cfg['DEFAULT'].get('console_scripts', '').split():
        name, target = entry.split('=', 1)
        mod, fn = target.split(':', 1)
        scripts[name] = (mod, fn)
    return scripts

SCRIPTS = console_scripts()
ENTRY = {name: mod for name, (mod, fn) in SCRIPTS.items()}   # {name: module}, for older callers

def cli_cmd(name, tmp_path) -> list:
    "The installed console script `name`, else a script file calling its function (before `pip install -e .`)."
    exe = Path(sys.executable).parent/name
    if exe.exists(): return [str(exe)]
    if shutil.which(name): return [shutil.which(name)]
    mod, fn = SCRIPTS[name]
    script = tmp_path/f'{name}_script.py'  # call_parse parses argv only when run as a script file
    script.write_text(f'from {mod} import {fn}\n{fn}()\n')
    return [sys.executable, str(script)]

def cli_env(**env) -> dict:
    "The environment of a command-line test: this checkout's salt_nb first on the path, quiet warnings, `env` added."
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
            'PYTHONWARNINGS': 'ignore', 'NO_ALBUMENTATIONS_UPDATE': '1', **{k: str(v) for k, v in env.items()}}

def run_cli(name, tmp_path, *args, timeout=300, **env):
    "Run console script `name` with `args` on this checkout's salt_nb; return the CompletedProcess (text output)."
    return subprocess.run([*cli_cmd(name, tmp_path), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**env))

def _read_until_eof(fd, proc, deadline, on_output=None) -> tuple[bytes, bool]:
    "Everything written to the pty master `fd` until EOF (EIO on Linux once the child's side closes); (bytes, timed out). `on_output(all bytes so far)` after each read."
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0: return b''.join(chunks), True
        r, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not r:
            if proc.poll() is not None and not select.select([fd], [], [], 0.2)[0]: return b''.join(chunks), False
            continue
        try: data = os.read(fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO: return b''.join(chunks), False
            raise
        if not data: return b''.join(chunks), False
        chunks.append(data)
        if on_output is not None: on_output(b''.join(chunks))

def run_pty(name, tmp_path, *args, timeout=300, columns=100, ctrl_c_after=None, **env) -> subprocess.CompletedProcess:
    "Run console script `name` in a pseudo-terminal (stdin/stdout/stderr a tty, TERM=xterm, `columns` wide), as a person does; `stdout` holds all its output (text, '\\r\\n' lines), `stderr` is ''. `ctrl_c_after`: press Ctrl-C (SIGINT to the command's process group) once its output matches this regex."
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 30, columns, 0, 0))
    env = cli_env(TERM='xterm', COLUMNS=columns, LINES=30, **env)
    cmd = [*cli_cmd(name, tmp_path), *map(str, args)]
    try:
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tmp_path,
                                start_new_session=True, close_fds=True)
    finally: os.close(slave)
    try:
        pressed = []
        def ctrl_c(out: bytes):
            if ctrl_c_after and not pressed and re.search(ctrl_c_after.encode(), out):
                pressed.append(1); os.killpg(proc.pid, signal.SIGINT)
        out, timed_out = _read_until_eof(master, proc, time.monotonic() + timeout, ctrl_c)
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)   # the child's own session: only what this test started
            proc.wait()
            raise subprocess.TimeoutExpired(cmd, timeout, output=out.decode(errors='replace')[-4000:])
        rc = proc.wait(timeout=60)
    finally: os.close(master)
    return subprocess.CompletedProcess(cmd, rc, out.decode(errors='replace'), '')

def tiny_synth(tmp_path_factory, section_tiles=(4, 2)):
    "A tiny synthetic Kaggle-layout folder: 2 sections of `section_tiles` tiles, half of them test."
    from salt_nb.synth import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('synth')/'tgs', n_sections=2, section_tiles=section_tiles, progress=False)

def untrained_run(path, geometry='pad128', n_folds=2):
    "A run folder as salt_train leaves it, made in-process: `n_folds` untrained `tiny` fold checkpoints and a postprocess.json."
    import torch
    from salt_nb.runs import RunConfig, RunDir, build_model, save_checkpoint
    from salt_nb.postprocess import save_postprocess
    torch.manual_seed(0)
    cfg, rd = RunConfig(model='tiny', geometry=geometry), RunDir(path)
    for k in range(n_folds): save_checkpoint(rd.best(k), build_model(cfg), cfg, fold=k)
    save_postprocess(dict(threshold=0.5, min_area=10, cls_threshold=None, score_oof=0.0), rd.path)
    return rd.path
