"""Start JupyterLab on a free local port over a copy of some notebooks, and drive it with Debian's chromium."""
import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('SALT_NB_CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
VIEWPORT = dict(width=1366, height=768)
# JupyterLab settings of a fresh user: no news or update checks, every cell in the page (no windowing), no widget state.
LAB_SETTINGS = {
    '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False},
    '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
    '@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings': {'saveState': False},
}

def browser_missing() -> str | None:
    "Why the browser tests cannot run here (no playwright, no chromium), or None."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return 'playwright is not installed (pip install playwright; it drives the system chromium)'
    if not os.access(CHROMIUM, os.X_OK): return f'no chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)'
    return None

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def copy_project(dest: Path, notebooks) -> Path:
    "A minimal project in `dest`: settings.ini and copies of `notebooks` (names in nbs/), as a user's checkout has them."
    (dest/'nbs').mkdir(parents=True)
    shutil.copy2(REPO/'settings.ini', dest/'settings.ini')
    for nb in notebooks: shutil.copy2(REPO/'nbs'/nb, dest/'nbs'/nb)
    return dest

class Lab:
    "A JupyterLab server (this Python's `jupyter lab`) on 127.0.0.1 with a random port and token, serving `root`."
    def __init__(self, root: Path, log: Path):
        self.root, self.port, self.token = Path(root), free_port(), secrets.token_hex(16)
        home = self.root.parent/'lab_home'
        for name, cfg in LAB_SETTINGS.items():
            f = home/'settings'/name; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(cfg))
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home/'runtime'), SALT_NB_TGS=str(home/'no_data'),
                   SALT_NB_CACHE=str(home/'cache'), OMP_WAIT_POLICY='PASSIVE', NO_ALBUMENTATIONS_UPDATE='1')
        cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={self.port}',
               f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={self.root}',
               f'--LabApp.user_settings_dir={home/"settings"}', f'--LabApp.workspaces_dir={home/"workspaces"}']
        if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')   # CI containers run as root
        self.log = open(log, 'w')
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root)
        self.url = f'http://127.0.0.1:{self.port}'
        self._wait()

    def _wait(self, timeout: float = 60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None: raise RuntimeError(f'jupyter lab exited with {self.proc.returncode}; see {self.log.name}')
            try:
                with urllib.request.urlopen(f'{self.url}/api/status?token={self.token}', timeout=2): return
            except OSError: time.sleep(.5)
        raise TimeoutError(f'jupyter lab did not answer within {timeout}s; see {self.log.name}')

    def tree_url(self, path: str) -> str: return f'{self.url}/lab/tree/{path}?token={self.token}&reset'

    def close(self):
        self.proc.terminate()
        try: self.proc.wait(15)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.log.close()

# ---- page helpers (playwright sync API) ----
def menu(page, top: str, item: str):
    "Choose `item` in the menu bar's `top` menu, as a user does with the mouse."
    page.locator('.lm-MenuBar-itemLabel', has_text=top).first.click()
    page.locator('.lm-Menu-itemLabel').get_by_text(item, exact=True).first.click()

def accept_kernel_dialog(page, wait_s: float = 8):
    "Press 'Select' in JupyterLab's kernel dialog when it asks which kernel to start (as a user would)."
    try: page.locator('.jp-Dialog-button', has_text='Select').first.click(timeout=wait_s * 1000)
    except Exception: pass   # no dialog: the notebook's kernel started by itself

def wait_all_run(page, timeout: float = 240):
    "Wait until every code cell of the open notebook has run, or until a cell failed and nothing is left running."
    page.wait_for_function("""() => {
        const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
        if (ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent))) return true;
        const failed = document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
        return failed && /Traceback|Error/.test(failed.textContent) && !ps.some(p => p.textContent.includes('*'));
    }""", timeout=timeout * 1000, polling=500)

def error_outputs(page) -> list[str]:
    "Texts of error outputs (tracebacks) and of widgets that failed to display, in the page."
    return page.evaluate("""() => {
        const out = [];
        for (const e of document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
            if (/Traceback|Error/.test(e.textContent)) out.push(e.textContent.slice(0, 500));
        for (const e of document.querySelectorAll('.jp-OutputArea-output'))
            if (/Error displaying widget|Model not found|Failed to load model class/.test(e.textContent)) out.push(e.textContent.slice(0, 300));
        return out;
    }""")
