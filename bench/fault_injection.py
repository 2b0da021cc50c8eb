"""Fault injection: SIGKILL `salt_train`, `salt_predict` and `salt_mosaic` at random moments and check that nothing is lost.

    python bench/fault_injection.py [--train-kills 20] [--predict-kills 10] [--mosaic-kills 10] [--json report.json]

On a small synthetic dataset (written to a temporary folder), `salt_train --config demo --epochs N` runs once
uninterrupted: the reference run and its timeline (when each epoch, the out-of-fold prediction and the tuning end).
Then runs are started in other folders, killed with SIGKILL (no clean-up code can run) and continued with `--resume`,
perhaps killed again, until they finish. Each kill is classified by the phase it hit, from the lines printed so far:
`epoch` (training), `checkpoint` (an atomic write of the run folder in progress), `oof` (out-of-fold prediction),
`tuning` (post-processing tuning and the writes before it), `exit` (after the last line). Kill times are aimed at the
phase hit least so far (from the reference timeline), some at random over the whole run. Every run, the reference
too, goes through a small wrapper (`_slow`, below: the same `salt_train` function) that prints a line before and after
each write of the run folder; the attempts aimed at `checkpoint` also write half of each file, sleep, then write the
rest, so that a kill lands mid-write. A resumed run must not train again an epoch whose resume state had been saved.

A finished run must hold the same files as the reference (no stray temporary files), every file must be readable
(YAML, JSON, CSV, NPZ, `.pth` with `torch.load(weights_only=True)`) and its tuned OOF score must be within `--tol` of
the reference's; its per-epoch CSV log must have as many rows. Training is seeded and a resumed run restarts at an
epoch boundary from saved state, so the score should be identical; the tolerance allows for nondeterministic CPU
kernels and thread scheduling: on the ~29 validation tiles of the default data one tile moves the score by up to
1/29 = 0.034, so the default 0.05 accepts one tile flipping and rejects a run that resumed from wrong weights.

Then `salt_predict` (on the reference run) and `salt_mosaic` are killed while they run or write, each time with a
complete earlier output at `--out`: after the kill the file must be that earlier output, byte for byte, or the
complete new one. Half of these kills go through the wrapper, which slows the write of the output file so that the
kill lands mid-write. A SIGKILL mid-write leaves the writer's temporary file behind (no code runs to remove it): the
next complete run of the same command must remove it (`--strict-temp`: the kill itself fails), in the run folder too.

Exit status 1 when any kill was not survived. `--json PATH` also writes the report (atomically).
"""
import argparse, io, json, os, random, re, shutil, signal, subprocess, sys, tempfile, threading, time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = '[faults]'                                   # lines printed by the `_slow` wrapper
PHASES = ('epoch', 'checkpoint', 'oof', 'tuning')   # the phases every run of the benchmark should hit
EPOCH_RE = re.compile(r'^(?:fold \d+ )?epoch (\d+)/(\d+)\b')
FOLD_DONE_RE = re.compile(r'^fold \d+: (?:score|already trained)')
DONE_RE = re.compile(r'^post-processing tuned')
ENTRY = {'salt_train': 'salt_nb.train', 'salt_predict': 'salt_nb.inference', 'salt_mosaic': 'salt_nb.mosaic'}


# ---------------------------------------------------------------- pure helpers (tested in tests/test_fault_injection.py)
def classify_phase(lines) -> str:
    "The phase of a `salt_train --quiet` run (single fold) that a kill after `lines` hit: epoch, checkpoint, oof, tuning or exit."
    phase, open_writes = 'epoch', set()
    for line in lines:
        line = line.strip()
        if line.startswith(MARK):
            parts = line.split(maxsplit=2)
            if len(parts) == 3 and parts[1] == 'write': open_writes.add(parts[2])
            elif len(parts) == 3 and parts[1] == 'wrote': open_writes.discard(parts[2])
        elif DONE_RE.match(line): phase = 'exit'
        elif FOLD_DONE_RE.match(line): phase = 'tuning'
        elif m := EPOCH_RE.match(line): phase = 'oof' if m[1] == m[2] else 'epoch'
    return 'checkpoint' if open_writes else phase


def open_write(lines) -> str | None:
    "The file whose write was in progress after `lines` (the `_slow` wrapper's markers), or None."
    open_writes = []
    for line in lines:
        parts = line.strip().split(maxsplit=2)
        if len(parts) == 3 and parts[0] == MARK:
            if parts[1] == 'write': open_writes.append(parts[2])
            elif parts[1] == 'wrote' and parts[2] in open_writes: open_writes.remove(parts[2])
    return open_writes[-1] if open_writes else None


def epoch_numbers(lines) -> list:
    "The epoch numbers of the `--quiet` epoch lines among `lines`."
    return [int(m[1]) for l in lines if (m := EPOCH_RE.match(l.strip()))]


def saved_epoch(lines) -> int:
    "The last epoch whose resume state (`*_state.pth`) was written completely after its epoch line, 0 if none (single fold)."
    epoch = saved = 0
    for l in lines:
        l = l.strip()
        if m := EPOCH_RE.match(l): epoch = int(m[1])
        elif l.startswith(f"{MARK} wrote") and l.endswith('_state.pth'): saved = max(saved, epoch)
    return saved


def is_temp(name: str) -> bool:
    "Whether a file name looks like a temporary file (`.x.tmp-host-123-4`, `x.tmp`, `x~`, `.~lock`)."
    return '.tmp' in name or name.endswith('~') or name.startswith('.~') or name.endswith('.part')


def file_set(folder) -> set:
    "Relative paths (posix) of all files under `folder`, hidden ones included."
    folder = Path(folder)
    return {p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file()}


def compare_file_sets(ref: set, got: set) -> dict:
    "What `got` lacks (`missing`) and holds beyond `ref` (`extra`), and which of those look temporary; empty lists when equal."
    extra = sorted(got - ref)
    return dict(missing=sorted(ref - got), extra=extra, temp=[p for p in extra if is_temp(Path(p).name)])


def output_state(data: bytes | None, old: bytes, new: bytes, header: bytes | None = None, n_lines: int | None = None) -> str:
    "After a kill: 'old' (the earlier file intact), 'new' (the complete new one), 'missing' or 'broken' (anything else)."
    if data is None: return 'missing'
    if data == old: return 'old'
    if data == new: return 'new'
    if header is not None and n_lines is not None and data.endswith(b'\n') and data.startswith(header) \
            and data.count(b'\n') == n_lines: return 'new'   # complete, though not byte-identical to the reference's
    return 'broken'


def pick_target(counts: Counter, rng: random.Random, p_random: float = 0.25) -> str:
    "The phase to aim the next kill at: 'random' with probability `p_random`, else one of the phases hit least so far."
    if rng.random() < p_random: return 'random'
    low = min(counts.get(p, 0) for p in PHASES)
    return rng.choice([p for p in PHASES if counts.get(p, 0) == low])


def phase_times(lines) -> dict:
    "Seconds from the start at which a run (markers on) printed its epochs and fold result, started and ended OOF prediction and tuning; from [(t, line)]."
    t, last = dict(epochs=[]), (0, -1)
    for s, line in lines:
        line = line.strip()
        if m := EPOCH_RE.match(line): t['epochs'].append(s); t['n_epochs'] = int(m[2]); last = (int(m[1]), int(m[2]))
        elif FOLD_DONE_RE.match(line): t['fold'] = s
        elif line.startswith(f"{MARK} wrote") and line.endswith('_state.pth') and last[0] == last[1] and 'fold' not in t:
            t['oof_start'] = s                   # the last epoch's resume state is saved: out-of-fold prediction starts
        elif DONE_RE.match(line): t['tuned'] = s
        elif line.startswith(f"{MARK} wrote") and line.endswith('metrics.json') and 'fold' in t and 'tune_start' not in t:
            t['tune_start'] = s                  # metrics without OOF written: tuning starts
        elif line.startswith(f"{MARK} write ") and 'tune_start' in t and 'tune_end' not in t: t['tune_end'] = s
    return t


def phase_durations(lines) -> dict:
    "Seconds of out-of-fold prediction (`oof`) and of tuning (`tuning`) in a run's output, where both ends were seen."
    t = phase_times(lines)
    return {k: round(t[b] - t[a], 3) for k, a, b in (('oof', 'oof_start', 'fold'), ('tuning', 'tune_start', 'tune_end')) if a in t and b in t}


def timeline(lines) -> dict:
    "The phase times of a complete reference run (see `phase_times`), with the mean epoch seconds (`epoch_s`)."
    t = phase_times(lines)
    missing = [k for k in ('n_epochs', 'fold', 'tuned') if k not in t]
    if missing: raise ValueError(f"reference run: no {', '.join(missing)} line in its output")
    t.setdefault('tune_start', t['fold']); t.setdefault('tune_end', t['tuned']); t.setdefault('oof_start', t['epochs'][-1])
    e = t['epochs']
    t['epoch_s'] = (e[-1] - e[0]) / (len(e) - 1) if len(e) > 1 else e[0] / 2
    return t


def summary_rows(report: dict) -> list:
    "Rows (what, kills, survived, notes) of the printed table."
    rows = []
    tr = report['train']
    by = Counter(k['phase'] for k in tr['kills'])
    ok = Counter(k['phase'] for k in tr['kills'] if k['survived'])
    for p in (*PHASES, 'exit'):
        if by[p] or p in PHASES:
            files = Counter(Path(k['file']).name for k in tr['kills'] if k['phase'] == p and k.get('file'))
            rows.append((f"salt_train: {p}", by[p], ok[p], ', '.join(f"{f} x{n}" for f, n in files.most_common())))
    n_tr = len(tr['kills'])
    rows.append(("salt_train: all", n_tr, sum(ok.values()),
                 f"{len(tr['runs'])} runs, {sum(r['ok'] for r in tr['runs'])} passed the checks"))
    for name in ('predict', 'mosaic'):
        r = report.get(name)
        if not r: continue
        st = Counter(k['state'] for k in r['kills'])
        rows.append((f"salt_{name}", len(r['kills']), sum(k['survived'] for k in r['kills']),
                     ', '.join(f"{s} {n}" for s, n in sorted(st.items()))
                     + f"; {sum(k['mid_write'] for k in r['kills'])} mid-write; {sum(bool(k['temp']) for k in r['kills'])} "
                     f"left temp files, {sum(bool(k['temp_after_rerun']) for k in r['kills'])} still there after the next run"))
    return rows


def blame(kills: list, chk: dict, failure: str | None = None) -> None:
    "Mark the kills of a run survived or not: a leftover `.x.tmp-<host>-<pid>-...` is the fault of the kill of process `pid`, a failed resume of the kill before it, other problems of all."
    mine = {}
    for f in chk.get('extra', []):
        m = re.search(r'\.tmp-.+-(\d+)-\d+$', Path(f).name)
        if m and is_temp(Path(f).name) and any(k.get('pid') == int(m[1]) for k in kills): mine.setdefault(int(m[1]), []).append(f)
    attributed = {f for fs in mine.values() for f in fs}
    other = [p for p in chk['problems'] if not any(f in p for f in attributed)]
    for i, k in enumerate(kills):
        causes = [f"its temporary file {mine[k['pid']]} is still there after the run finished"] if k.get('pid') in mine else []
        causes += ([failure] if i == len(kills) - 1 else []) if failure is not None else other
        if k.get('epochs_redone'): causes.append(f"the resumed run trained {k['epochs_redone']} epoch(s) again whose state had been saved")
        k['survived'] = not causes
        if causes: k['cause'] = '; '.join(causes)


def failure_lines(report: dict) -> list:
    "One line per distinct cause of a kill that was not survived (or of a run that failed without kills), with its count."
    causes = []
    for k in report['train']['kills']:
        if not k['survived']: causes.append(f"salt_train, kill in {k['phase']}: {k.get('cause') or 'temporary file left by the kill'}")
    for r in report['train']['runs']:
        if not r['ok'] and not r['kills']: causes.append(f"salt_train, run without kills: {'; '.join(r['problems'])}")
    for name in ('predict', 'mosaic'):
        for k in (report.get(name) or {}).get('kills', []):
            if not k['survived']:
                causes.append(f"salt_{name}: output {k['state']}" + (f", temp files left {k['temp_after_rerun']} after the next run"
                              if k['temp_after_rerun'] else ', temp file left by the kill' if k['temp'] else ''))
    n = Counter(re.sub(r'\.tmp-[^/\s]+?-\d+-\d+', '.tmp-<host>-<pid>-<thread>', c) for c in causes)   # one line for any process's temporary file
    return [f"FAILED x{k}: {c}" for c, k in n.most_common()]


def format_table(rows) -> str:
    "A plain-text table of (what, kills, survived, notes) rows."
    head = ('what', 'kills', 'survived', 'notes')
    w = [max(len(str(r[i])) for r in (head, *rows)) for i in range(3)]
    return '\n'.join(f"{str(r[0]):<{w[0]}}  {str(r[1]):>{w[1]}}  {str(r[2]):>{w[2]}}  {r[3]}" for r in (head, *rows))


# ---------------------------------------------------------------- the wrapper run in the killed processes
def slow_cli(argv):
    "`_slow DELAY REGEX NAME ARGS...`: console script NAME, to call, with markers around each write whose path matches REGEX, slowed by DELAY s."
    delay, pattern, name, args = float(argv[0]), re.compile(argv[1]), argv[2], argv[3:]
    import importlib
    mod = importlib.import_module(ENTRY[name])
    import salt_nb.files
    orig = salt_nb.files.atomic_write

    def atomic_write(path, write):
        if not pattern.search(str(path)): return orig(path, write)
        def slow_write(f):
            print(f"{MARK} write {path}", flush=True)
            if delay <= 0: return write(f)
            buf = io.BytesIO(); write(buf); data = buf.getvalue()
            f.write(data[:len(data) // 2]); f.flush()
            time.sleep(delay)
            f.write(data[len(data) // 2:])
        out = orig(path, slow_write)
        print(f"{MARK} wrote {path}", flush=True)
        return out
    for m in list(sys.modules.values()):               # every salt_nb module that imported atomic_write by name
        if getattr(m, '__name__', '').startswith('salt_nb') and getattr(m, 'atomic_write', None) is orig:
            m.atomic_write = atomic_write

    import pandas as pd
    to_csv = pd.DataFrame.to_csv
    def slow_to_csv(self, path_or_buf=None, *a, **kw):  # a direct (non-atomic) CSV write to a matching path: slowed too
        if not isinstance(path_or_buf, (str, os.PathLike)) or not pattern.search(str(path_or_buf)):
            return to_csv(self, path_or_buf, *a, **kw)
        text = to_csv(self, None, *a, **kw)
        with open(path_or_buf, 'w') as f:
            print(f"{MARK} write {path_or_buf}", flush=True)
            f.write(text[:len(text) // 2]); f.flush()
            if delay > 0: time.sleep(delay)
            f.write(text[len(text) // 2:])
        print(f"{MARK} wrote {path_or_buf}", flush=True)
    pd.DataFrame.to_csv = slow_to_csv
    sys.argv = [name, *args]
    return getattr(mod, name)                            # called at the top level of this script: call_parse parses sys.argv


# ---------------------------------------------------------------- processes
class Proc:
    "A command started in its own process group, its output lines collected with their times (seconds from start)."
    live = set()                                  # started and not yet ended: killed if the benchmark stops early
    def __init__(self, cmd, env):
        self.t0, self.lines, self.killed_at = time.time(), [], None
        self.p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env, start_new_session=True, bufsize=1)
        Proc.live.add(self)
        self.reader = threading.Thread(target=self._read, daemon=True); self.reader.start()
    def _read(self):
        for line in self.p.stdout: self.lines.append((time.time() - self.t0, line.rstrip('\n')))
    def elapsed(self) -> float: return time.time() - self.t0
    def text(self) -> list: return [l for _, l in list(self.lines)]
    def running(self) -> bool:
        if self.p.poll() is None: return True
        Proc.live.discard(self); return False
    def kill(self) -> bool:
        "SIGKILL the process group (this process and anything it started); False if it had already ended."
        if not self.running(): return False
        self.killed_at = self.elapsed()
        try: os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError: return False
        self.p.wait(); self.reader.join(5); Proc.live.discard(self)
        return True
    def wait(self, timeout) -> int:
        try: rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired: self.kill(); rc = -9
        self.reader.join(5); Proc.live.discard(self)
        return rc


def wait_for(proc: Proc, cond, timeout: float, poll: float = 0.01):
    "Poll `cond()` until it returns a number (a kill time, seconds from the process start) or the process ends; that time or None."
    t_end = time.time() + timeout
    while proc.running() and time.time() < t_end:
        t = cond()
        if t is not None: return t
        time.sleep(poll)
    return None


def kill_at(proc: Proc, trigger, timeout: float) -> bool:
    "Kill `proc` at the time `trigger()` names (polled until it names one); False when the process ended first."
    t = wait_for(proc, trigger, timeout)
    if t is None: return False
    while proc.running() and proc.elapsed() < t: time.sleep(0.005)
    return proc.kill()


def line_after_line(proc: Proc, first, then, delay: float):
    "A trigger: `delay` seconds after the first output line matching `then` that follows a line matching `first`."
    def trigger():
        lines = list(proc.lines)
        i = next((i for i, (_, l) in enumerate(lines) if first.search(l)), None)
        j = None if i is None else next((j for j in range(i + 1, len(lines)) if then.search(lines[j][1])), None)
        return None if j is None else lines[j][0] + delay
    return trigger


def nth_line_after(proc: Proc, regex, n: int, delay: float):
    "A trigger: `delay` seconds after the `n`-th output line (1-based) matching `regex`."
    def trigger():
        hits = [t for t, l in list(proc.lines) if regex.search(l)]
        return hits[n - 1] + delay if len(hits) >= n else None
    return trigger


def env_for(work: Path) -> dict:
    return {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
            'PYTHONWARNINGS': 'ignore', 'PYTHONUNBUFFERED': '1', 'NO_ALBUMENTATIONS_UPDATE': '1',
            'OMP_WAIT_POLICY': 'PASSIVE', 'SALT_NB_CACHE': str(work/'cache')}


def cli(name) -> list:
    "The installed console script `name`, else the `_slow` wrapper without delay (same function)."
    exe = Path(sys.executable).parent/name
    return [str(exe)] if exe.exists() else wrap(name, 0, r'^$')


def wrap(name, delay, pattern) -> list:
    return [sys.executable, str(Path(__file__).resolve()), '_slow', str(delay), pattern, name]


# ---------------------------------------------------------------- checks
def unreadable(folder) -> list:
    "[(file, error)] for the files of a run folder that do not read back (yaml, json, csv, npz, pth)."
    import csv, numpy as np, torch, yaml
    bad = []
    for rel in sorted(file_set(folder)):
        p = Path(folder)/rel
        try:
            if p.suffix in ('.yaml', '.yml'): yaml.safe_load(p.read_text())
            elif p.suffix == '.json': json.loads(p.read_text())
            elif p.suffix == '.csv':
                rows = list(csv.reader(p.open()))
                if not rows or len({len(r) for r in rows}) != 1: raise ValueError('rows of different lengths')
            elif p.suffix == '.npz':
                with np.load(p, allow_pickle=False) as z: [z[k] for k in z.files]
            elif p.suffix == '.pth': torch.load(p, map_location='cpu', weights_only=True)
            else: raise ValueError('unexpected file')
        except Exception as e: bad.append((rel, f"{type(e).__name__}: {str(e)[:200]}"))
    return bad


def oof_score(run) -> float | None:
    try: return json.loads((Path(run)/'metrics.json').read_text())['oof']['score_tuned']
    except Exception: return None


def csv_rows(folder) -> dict:
    "{csv file: number of lines} of a run folder (the per-epoch logs)."
    return {rel: len((Path(folder)/rel).read_text().splitlines()) for rel in sorted(file_set(folder)) if rel.endswith('.csv')}


def check_run(run, ref_files: set, ref_score: float, tol: float, ref_rows: dict | None = None) -> dict:
    "The end-of-run checks of a resumed run against the reference: same files, all readable, as many log rows, score within `tol`."
    files = compare_file_sets(ref_files, file_set(run))
    bad, score = unreadable(run), oof_score(run)
    delta = None if score is None or ref_score is None else round(score - ref_score, 4)
    problems = ([f"missing {files['missing']}"] if files['missing'] else []) + ([f"extra {files['extra']}"] if files['extra'] else []) \
        + [f"unreadable {f}: {e}" for f, e in bad] + (['no OOF score'] if score is None else []) \
        + [f"{f} has {n} lines, the reference's {ref_rows[f]}" for f, n in csv_rows(run).items() if ref_rows and f in ref_rows and n != ref_rows[f]] \
        + ([f"score {score:.4f} differs from the reference's {ref_score:.4f} by more than {tol}"] if delta is not None and abs(delta) > tol else [])
    return dict(score=score, delta=delta, problems=problems, ok=not problems, extra=files['extra'])


# ---------------------------------------------------------------- the benchmark
def train_args(data, run, a, resume=False) -> list:
    return ['salt_train', data, '--out', run, '--config', a.config, '--epochs', a.epochs, '--quiet', '--device', 'cpu',
            *(['--threads', a.threads] if a.threads else []), *(['--resume'] if resume else [])]


def trigger_for(target, proc, tl, rng, slow):
    "The kill trigger of an attempt aimed at `target`, from the reference timeline `tl`."
    e = tl['epoch_s']
    if target == 'epoch':                       # half inside the first epoch of the attempt, half after an epoch line
        if rng.random() < 0.5:
            t = tl['epochs'][0] - rng.uniform(0.1, 0.9) * e
            return lambda: t
        return nth_line_after(proc, EPOCH_RE, 1, rng.uniform(0.1, 0.9) * e)
    if target == 'checkpoint':                  # mostly a .pth (best model or resume state), else any file of the run folder
        pth = rng.random() < 0.75
        return nth_line_after(proc, re.compile(re.escape(MARK) + (r' write .*\.pth$' if pth else ' write ')),
                              rng.randint(1, 4 if pth else 6), rng.uniform(0.1, 0.9) * slow)
    if target == 'oof':                         # after the last epoch's resume state is written, within the reference's OOF time
        last = re.compile(rf"epoch {tl['n_epochs']}/{tl['n_epochs']}\b")
        return line_after_line(proc, last, re.compile(re.escape(MARK) + r' wrote .*_state\.pth$'), rng.uniform(0.0, 0.9) * tl['oof_s'])
    if target == 'tuning':                      # after the metrics.json written before tuning, within the reference's tuning time
        return nth_line_after(proc, re.compile(re.escape(MARK) + r' wrote .*metrics\.json$'), 1,
                              rng.uniform(0.05, 0.9) * tl['tuning_s'])
    t = rng.uniform(0.3, tl['tuned'])           # 'random': anywhere in the run
    return lambda: t


def train_kills(a, work, data, env, log) -> dict:
    "The reference run, then killed and resumed runs until there are `a.train_kills` kills and every phase has `a.min_per_phase`."
    rng = random.Random(a.seed)
    ref = work/'RUN0'
    log(f"reference: salt_train {data} --out {ref} --config {a.config} --epochs {a.epochs} --quiet")
    p = Proc(wrap('salt_train', 0, re.escape(str(ref)) + r'/') + train_args(data, ref, a)[1:], env)   # markers on, no delay
    rc = p.wait(a.timeout)
    if rc != 0: raise SystemExit("reference run failed:\n" + '\n'.join(p.text()[-20:]))
    tl, ref_s = timeline(p.lines), p.elapsed()
    tl.update(oof_s=tl['fold'] - tl['oof_start'], tuning_s=tl['tune_end'] - tl['tune_start'])   # updated from each attempt: the load changes
    ref_files, ref_score, ref_rows = file_set(ref), oof_score(ref), csv_rows(ref)
    ref_check = dict(unreadable=unreadable(ref), temp=[f for f in ref_files if is_temp(Path(f).name)])
    log(f"reference: {ref_s:.0f} s, epochs end at {', '.join(f'{t:.0f}' for t in tl['epochs'])} s, fold result {tl['fold']:.1f} s, "
        f"tuned {tl['tuned']:.1f} s; OOF score {ref_score:.4f}; files {sorted(ref_files)}")
    counts, kills, runs = Counter(), [], []
    n_attempts = 0
    while (len(kills) < a.train_kills or min(counts.get(p, 0) for p in PHASES) < a.min_per_phase) and n_attempts < 4 * a.train_kills:
        run = work/f'RUN{len(runs) + 1}'
        per_run, run_kills, attempt, failure, saved = rng.randint(1, 3), [], 0, None, 0
        while True:
            n_attempts += 1
            target = pick_target(counts, rng) if len(run_kills) < per_run else None
            slow = a.slow_write if target == 'checkpoint' else 0
            proc = Proc(wrap('salt_train', slow, re.escape(str(run)) + r'/') + train_args(data, run, a, resume=attempt > 0)[1:], env)
            killed = target is not None and kill_at(proc, trigger_for(target, proc, tl, rng, slow), a.timeout)
            if not killed: rc = proc.wait(a.timeout)
            lines = proc.text()
            if run_kills:                            # this attempt continued after a kill: did it train saved epochs again?
                run_kills[-1]['epochs_redone'] = run_kills[-1].get('epochs_redone', 0) + len([e for e in epoch_numbers(lines) if e <= saved])
            saved = max(saved, saved_epoch(lines))
            tl.update({f'{k}_s': v for k, v in phase_durations(proc.lines).items()})
            if killed:
                k = dict(run=run.name, attempt=attempt, target=target, phase=classify_phase(lines), file=open_write(lines),
                         t=round(proc.killed_at, 2), last_line=next((l for l in reversed(lines) if not l.startswith(MARK)), ''),
                         temp_after_kill=[f for f in file_set(run) if is_temp(Path(f).name)] if run.exists() else [],
                         pid=proc.p.pid, survived=None)
                counts[k['phase']] += 1; kills.append(k); run_kills.append(k)
                log(f"{run.name} attempt {attempt}: killed at {k['t']:.1f} s aiming at {target}: hit {k['phase']}"
                    + (f" ({Path(k['file']).name})" if k['file'] else '') + f"; last line: {k['last_line'][:80]!r}")
                attempt += 1
                continue
            if rc != 0:
                failure = f"attempt {attempt} exited {rc}: " + ' | '.join(l for l in proc.text()[-3:] if l)
                log(f"{run.name}: FAILED {failure}")
                break
            if target is not None and not run_kills: log(f"{run.name} attempt {attempt}: finished before the kill aimed at {target}")
            break
        chk = check_run(run, ref_files, ref_score, a.tol, ref_rows) if failure is None else dict(score=None, delta=None, problems=[failure], ok=False)
        blame(run_kills, chk, failure)
        for k in run_kills:
            if a.strict_temp and k['temp_after_kill'] and k['survived']: k['survived'], k['cause'] = False, f"left {k['temp_after_kill']}"
        runs.append(dict(run=run.name, kills=len(run_kills), attempts=attempt + 1, **chk))
        log(f"{run.name}: {len(run_kills)} kill(s), {'OK' if chk['ok'] else 'FAILED: ' + '; '.join(chk['problems'])}"
            + (f", score delta {chk['delta']:+.4f}" if chk['delta'] is not None else ''))
        if not a.keep: shutil.rmtree(run, ignore_errors=True)
    deltas = [r['delta'] for r in runs if r['delta'] is not None]
    return dict(reference=dict(seconds=round(ref_s, 1), score=ref_score, files=sorted(ref_files), timeline=tl, **ref_check),
                kills=kills, runs=runs, tol=a.tol, max_abs_delta=max(map(abs, deltas)) if deltas else None,
                deltas=deltas)


def output_kills(name, a, work, base_args, out: Path, prev_args, n, env, log) -> dict:
    "Kill `name` `n` times while it runs or writes `out`, each time over a complete earlier output; check that output after each kill."
    rng = random.Random(a.seed + len(name))
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, args in (('new', base_args), ('old', prev_args)):   # the complete outputs: the new one, and an earlier one
        p = Proc(cli(name) + args, env)
        rc = p.wait(a.timeout)
        if rc != 0 or not out.exists(): raise SystemExit(f"{name} failed:\n" + '\n'.join(p.text()[-20:]))
        runs[label] = (out.read_bytes(), p.elapsed())
    (new, t_ref), (old, _) = runs['new'], runs['old']
    header, n_lines = new.split(b'\n', 1)[0] + b'\n', new.count(b'\n')
    log(f"{name}: complete run {t_ref:.1f} s, {n_lines} lines; the earlier output {'equals' if old == new else 'differs from'} the new one")
    kills, tries = [], 0
    while len(kills) < n and tries < 3 * n:
        tries += 1
        tmp = out.with_name(out.name + '.harness')
        tmp.write_bytes(old); os.replace(tmp, out)      # the earlier complete output, in place
        mid = len(kills) % 2 == 1
        if mid:
            proc = Proc(wrap(name, a.slow_write, re.escape(out.name) + '$') + base_args, env)
            trig = nth_line_after(proc, re.compile(re.escape(MARK) + ' write '), 1, rng.uniform(0.1, 0.9) * a.slow_write)
        else:
            proc = Proc(cli(name) + base_args, env)
            t = rng.uniform(0.2, t_ref * 1.05)
            trig = lambda: t
        if not kill_at(proc, trig, a.timeout):
            rc = proc.wait(a.timeout)
            log(f"{name}: ended (exit {rc}) before the kill" + (' (no write marker: not written through atomic_write or to_csv?)' if mid else ''))
            continue
        data = out.read_bytes() if out.exists() else None
        state = output_state(data, old, new, header, n_lines)
        lines = proc.text()
        temp = temp_beside(out)
        k = dict(t=round(proc.killed_at, 2), mid_write=open_write(lines) is not None, state=state, temp=temp, temp_after_rerun=[])
        if temp:                                        # the next complete run must remove what the killed one left
            rc = Proc(cli(name) + base_args, env).wait(a.timeout)
            k['temp_after_rerun'] = temp_beside(out) if rc == 0 else [f"rerun exited {rc}"]
        k['survived'] = state in ('old', 'new') and not k['temp_after_rerun'] and not (a.strict_temp and temp)
        kills.append(k)
        log(f"{name}: killed at {k['t']:.1f} s{' mid-write' if k['mid_write'] else ''}: output {state}"
            + (f", temp files left: {temp}, after the next complete run: {k['temp_after_rerun'] or 'none'}" if temp else ''))
        for p in out.parent.iterdir():                  # a clean folder for the next kill
            if p.name != out.name: p.unlink()
    return dict(seconds=round(t_ref, 1), kills=kills, old_equals_new=old == new)


def temp_beside(out: Path) -> list:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name and is_temp(p.name))


def write_json_atomic(path, obj) -> None:
    from salt_nb.files import atomic_write
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, default=str).encode()))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--train-kills', type=int, default=20, help='kills of salt_train (at least; more until every phase has --min-per-phase)')
    p.add_argument('--min-per-phase', type=int, default=3, help='kills in each of epoch, checkpoint, oof, tuning')
    p.add_argument('--predict-kills', type=int, default=10, help='kills of salt_predict')
    p.add_argument('--mosaic-kills', type=int, default=10, help='kills of salt_mosaic')
    p.add_argument('--epochs', type=int, default=4, help='epochs of each training run')
    p.add_argument('--config', default='demo', help='salt_train --config')
    p.add_argument('--sections', type=int, default=3, help='synthetic mosaics (sections)')
    p.add_argument('--section-tiles', default='12x8', help='tiles per section, columns x rows (half of them test tiles)')
    p.add_argument('--threads', type=int, default=0, help='salt_train --threads (0: its default)')
    p.add_argument('--tol', type=float, default=0.05, help='largest accepted |OOF score - reference OOF score|')
    p.add_argument('--slow-write', type=float, default=1.5, help='seconds a slowed write sleeps halfway')
    p.add_argument('--strict-temp', action='store_true', help='a temporary file left by a kill fails it even when the next run removes it')
    p.add_argument('--timeout', type=float, default=600, help='seconds one process may run')
    p.add_argument('--seed', type=int, default=0, help='seed of the kill times')
    p.add_argument('--work', help='folder for data and runs (default: a temporary folder, removed at the end)')
    p.add_argument('--keep', action='store_true', help='keep the run folders')
    p.add_argument('--json', help='also write the report as JSON here')
    p.add_argument('--quiet', action='store_true', help='print only the summary')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the clean-up below on SIGTERM too
    t0 = time.time()
    log = (lambda s: None) if a.quiet else (lambda s: print(f"[{time.time() - t0:6.1f} s] {s}", flush=True))
    tmp = None if a.work else tempfile.mkdtemp(prefix='salt_faults_')
    work = Path(a.work or tmp).resolve(); work.mkdir(parents=True, exist_ok=True)
    try:
        from salt_nb.synth import make_synthetic
        cols, rows = (int(v) for v in a.section_tiles.lower().split('x'))
        data = work/'tgs'
        if not (data/'train.csv').exists(): make_synthetic(data, n_sections=a.sections, section_tiles=(cols, rows), progress=False)
        env = env_for(work)
        report = dict(command=' '.join(['python', 'bench/fault_injection.py', *(sys.argv[1:] if argv is None else argv)]),
                      data=dict(sections=a.sections, section_tiles=a.section_tiles), epochs=a.epochs, config=a.config,
                      machine=dict(cpus=os.cpu_count(), loadavg_at_start=os.getloadavg()))
        report['train'] = train_kills(a, work, data, env, log)
        ref = work/'RUN0'
        if a.predict_kills:
            report['predict'] = output_kills('salt_predict', a, work, ['--model', ref, '--data', data, '--out', work/'pred'/'sub.csv', '--no-progress'],
                                             work/'pred'/'sub.csv', ['--model', ref, '--data', data, '--out', work/'pred'/'sub.csv', '--no-progress',
                                                                     '--threshold', '0.9'], a.predict_kills, env, log)
        if a.mosaic_kills:
            report['mosaic'] = output_kills('salt_mosaic', a, work, [data, '--out', work/'mos'/'mosaics.csv'], work/'mos'/'mosaics.csv',
                                            [data, '--out', work/'mos'/'mosaics.csv', '--max_ratio', '0.5'], a.mosaic_kills, env, log)
        report['seconds'] = round(time.time() - t0, 1)
        rows = summary_rows(report)
        failed = sum(r[1] - r[2] for r in rows if r[0] in ('salt_train: all', 'salt_predict', 'salt_mosaic')) \
            + sum(not r['ok'] and not r['kills'] for r in report['train']['runs'])
        report['failed'] = failed
        print(format_table(rows))
        tr = report['train']
        print(f"OOF score: reference {tr['reference']['score']:.4f}; resumed runs differ by "
              + (', '.join(f'{d:+.4f}' for d in tr['deltas']) or 'nothing (no run finished)')
              + f" (max |delta| {tr['max_abs_delta']}, tolerance {a.tol})")
        for line in failure_lines(report): print(line)
        print(f"wall time {report['seconds'] / 60:.1f} min; {'all kills survived' if not failed else f'{failed} failure(s)'}")
        if a.json: write_json_atomic(a.json, report)
        return 1 if failed else 0
    finally:
        for p in list(Proc.live): p.kill()         # interrupted (Ctrl-C, an error): no process of ours outlives the benchmark
        if tmp and not a.keep: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '_slow':
        entry = slow_cli(sys.argv[2:])
        entry()
    else: sys.exit(main())
