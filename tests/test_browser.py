"""The viewer notebooks in JupyterLab as a user meets them: opened in headless chromium, run, clicked, typed into, saved.

They skip (with the reason) where chromium or playwright is missing, unless SALT_NB_REQUIRE_BROWSER is set (CI sets
it), where they fail instead. Screenshots and the server log go to $SALT_NB_ARTIFACTS (default tests/artifacts/).
"""
import json, os, re, subprocess, sys, time, urllib.request
from pathlib import Path
from types import SimpleNamespace
import pytest
from jupyterlab_browser import (REPO, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Lab, browser_missing, copy_project, menu,
                                accept_kernel_dialog, wait_all_run, error_outputs)

ART = Path(os.environ.get('SALT_NB_ARTIFACTS') or Path(__file__).parent/'artifacts')
NOTEBOOKS = ('14_mosaic_viewer.ipynb', '24_viewers.ipynb')
VIEW = '.jp-OutputArea-output:has(.jupyter-matplotlib-canvas-div)'   # the output holding a viewer
# JupyterLab itself logs these without anything being wrong for a user: no internet for its news and update checks.
BENIGN = re.compile(r'Failed to load resource|net::ERR_|jupyterlab.github.io|ERR_NAME_NOT_RESOLVED')

def test_pre_save_hook_cleans(tmp_path):
    "The repository's Jupyter pre-save hook stores a run notebook as it is in git: no outputs, no kernel or widget metadata."
    ns = {'c': SimpleNamespace(FileContentsManager=SimpleNamespace())}
    exec(compile((REPO/'jupyter_server_config.py').read_text(), 'jupyter_server_config.py', 'exec'), ns)
    hook = ns['c'].FileContentsManager.pre_save_hook
    root = copy_project(tmp_path/'p', ['24_viewers.ipynb'])
    orig = json.loads((root/'nbs/24_viewers.ipynb').read_text())
    nb = json.loads(json.dumps(orig))
    for k, cell in enumerate(nb['cells']):
        if cell['cell_type'] == 'code':
            cell.update(execution_count=k, outputs=[{'output_type': 'stream', 'name': 'stdout', 'text': 'hi'}])
            cell['metadata']['scrolled'] = True
    nb['metadata'].update(widgets={'application/vnd.jupyter.widget-state+json': {}}, language_info={'name': 'python'})
    nb['metadata']['kernelspec']['display_name'] = 'Python 3 (ipykernel)'
    cm = SimpleNamespace(_get_os_path=lambda p: str(root/p))
    hook(model={'type': 'notebook', 'content': nb}, path='nbs/24_viewers.ipynb', contents_manager=cm)
    assert nb == orig
    other = {'type': 'notebook', 'content': json.loads(json.dumps(nb))}
    other['content']['cells'][0]['outputs'] = [{'output_type': 'stream', 'name': 'stdout', 'text': 'x'}]
    hook(model=other, path='elsewhere/x.ipynb', contents_manager=SimpleNamespace(_get_os_path=lambda p: str(tmp_path/p)))
    assert other['content']['cells'][0]['outputs']                     # outside the project: left alone

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    why = browser_missing()
    if why:
        if os.environ.get('SALT_NB_REQUIRE_BROWSER'): pytest.fail(f'SALT_NB_REQUIRE_BROWSER is set but {why}')
        pytest.skip(why)
    from playwright.sync_api import sync_playwright
    ART.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp('lab')
    server = Lab(copy_project(tmp/'project', NOTEBOOKS), ART/'jupyterlab.log')
    pw = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(str(tmp/'profile'), executable_path=CHROMIUM, headless=True,
                                                    args=CHROMIUM_ARGS, viewport=VIEWPORT)
        yield SimpleNamespace(server=server, ctx=ctx)
        ctx.close()
    finally: pw.stop(); server.close()

def run_notebook(lab, nb: str):
    "Open `nb` in a new tab, Run All from the menu and wait for it; returns the page and the list of console problems."
    page, problems = lab.ctx.new_page(), []
    page.on('console', lambda m: m.type == 'error' and not BENIGN.search(m.text) and problems.append(f'console: {m.text}'))
    page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    page.goto(lab.server.tree_url(f'nbs/{nb}'))
    page.locator('.jp-NotebookPanel .jp-Cell').first.wait_for(timeout=90_000)
    accept_kernel_dialog(page)
    menu(page, 'Run', 'Run All Cells')
    wait_all_run(page)
    assert not error_outputs(page), error_outputs(page)
    page.locator(VIEW).last.wait_for(timeout=60_000)
    return page, problems

def shot(page, loc, name: str) -> bytes:
    "Screenshot of `loc`, saved as an artifact; the bytes, to compare what the user sees before and after."
    return loc.screenshot(path=str(ART/f'{name}.png'))

def canvas_changes(page, canvas, before: bytes, wait_s: float = 10) -> bool:
    "Whether the canvas pixels differ from `before` within `wait_s` seconds (the kernel redraws asynchronously)."
    for _ in range(int(wait_s / .25)):
        if canvas.screenshot() != before: return True
        page.wait_for_timeout(250)
    return False

def fits_window(page, viewer):
    "The viewer fits the notebook's visible area of a 1366x768 window (what is larger scrolls inside it)."
    viewer.evaluate("e => e.scrollIntoView({block: 'start'})"); page.wait_for_timeout(500)   # the whole viewer in view
    v, nb = viewer.bounding_box(), page.locator('.jp-Notebook').first.bounding_box()
    height = min(nb['y'] + nb['height'], VIEWPORT['height']) - max(nb['y'], 0)
    right = min(nb['x'] + nb['width'], VIEWPORT['width'])
    assert v['height'] <= height and v['x'] + v['width'] <= right + 1, (v, nb)

def table(viewer) -> dict:
    "The metadata panel of the selected tile as {row name: text}."
    return viewer.locator('table').first.evaluate(
        "t => Object.fromEntries([...t.rows].map(r => [r.cells[0].textContent.trim(), r.cells[1].textContent.trim()]))")

def no_broken_images(viewer) -> bool:
    return viewer.evaluate("v => [...v.querySelectorAll('img')].every(i => i.offsetParent === null || (i.complete && i.naturalWidth > 0))")

def save_and_check_clean(lab, page, nb: str):
    "Save through the File menu; after `nbdev_clean` the saved notebook must equal the one in the repository."
    f = lab.server.root/'nbs'/nb; t0 = f.stat().st_mtime
    menu(page, 'File', 'Save Notebook')
    for _ in range(60):
        if f.stat().st_mtime > t0: break
        time.sleep(.5)
    else: raise AssertionError(f'{nb} was not saved')
    time.sleep(1)
    saved = f.read_text()
    subprocess.run([Path(sys.executable).parent/'nbdev_clean', '--fname', str(f)], cwd=lab.server.root, check=True)
    assert f.read_text() == (REPO/'nbs'/nb).read_text(), f'{nb} differs from the repository after saving and nbdev_clean'
    return saved == (REPO/'nbs'/nb).read_text()

def shutdown_kernels(lab):
    s = lab.server
    with urllib.request.urlopen(f'{s.url}/api/kernels?token={s.token}') as r: ks = json.load(r)
    for k in ks:
        urllib.request.urlopen(urllib.request.Request(f"{s.url}/api/kernels/{k['id']}?token={s.token}", method='DELETE'))

def test_mask_viewer_in_jupyterlab(lab):
    page, problems = run_notebook(lab, '24_viewers.ipynb')
    viewer = page.locator(VIEW).last
    fits_window(page, viewer)
    canvas = viewer.locator('.jupyter-matplotlib-canvas-div canvas').last
    dropdown = lambda label: viewer.locator(f'.widget-dropdown:has(label:text-is("{label}")) select')
    assert dropdown('filter').input_value() == '(none)'
    png0 = shot(page, viewer, 'mask_viewer_0_start')
    box = canvas.bounding_box()
    page.mouse.click(box['x'] + (107 + 50) * 2, box['y'] + (119 + 12 + 50) * 2)       # the 5th tile: row 2, column 2 (scale 2)
    page.wait_for_function("v => v.querySelector('table') && v.querySelector('table').textContent.includes('t04')",
                           arg=viewer.element_handle(), timeout=15_000)
    assert dropdown('tile').input_value() != '' and shot(page, viewer, 'mask_viewer_1_clicked') != png0
    page.keyboard.press('ArrowRight'); page.keyboard.press('ArrowRight')               # the canvas has the focus
    page.wait_for_function("v => v.textContent.includes('page 2 of 5')", arg=viewer.element_handle(), timeout=15_000)
    assert table(viewer)['id'] == 't06'
    dropdown('tile').select_option(label='t11')
    page.wait_for_function("v => v.querySelector('table').textContent.includes('t11')", arg=viewer.element_handle(), timeout=15_000)
    before, png1 = table(viewer), shot(page, viewer, 'mask_viewer_2_t11')
    grid1 = canvas.screenshot()
    readout = viewer.locator('.widget-slider:has(label:text-is("threshold")) .widget-readout')
    readout.click(); page.keyboard.press('Control+a'); page.keyboard.type('0.2'); page.keyboard.press('Enter')
    page.wait_for_function("v => v.textContent.includes('threshold 0.20') && [...v.querySelector('table').rows].some("
                           "r => r.cells[0].textContent.trim() === 'empty_pred' && r.cells[1].textContent.trim() === 'False')",
                           arg=viewer.element_handle(), timeout=15_000)     # fails if the readouts stay at 0.5
    after = table(viewer)
    assert (before['pred_px'], before['empty_pred'], after['empty_pred']) == ('0', 'True', 'False') and after['pred_px'] != '0', (before, after)
    assert canvas_changes(page, canvas, grid1)                                   # t11's prediction is drawn
    shot(page, viewer, 'mask_viewer_3_threshold')
    dropdown('filter').select_option('empty_truth')
    page.wait_for_function("v => [...v.querySelectorAll('.widget-dropdown select')[1].options].some(o => o.value === 'True')",
                           arg=viewer.element_handle(), timeout=15_000)                 # the kernel sent the new values
    page.wait_for_timeout(500)
    viewer.locator('.widget-dropdown select').nth(1).select_option('True')
    page.wait_for_function("v => v.textContent.includes('10 images, page 1 of 2')", arg=viewer.element_handle(), timeout=15_000)
    shot(page, viewer, 'mask_viewer_4_filtered')
    assert not error_outputs(page) and not problems, (error_outputs(page), problems)
    print('saved file already clean:', save_and_check_clean(lab, page, '24_viewers.ipynb'))
    shutdown_kernels(lab); page.close()

def test_mosaic_viewer_in_jupyterlab(lab):
    page, problems = run_notebook(lab, '14_mosaic_viewer.ipynb')
    viewer = page.locator(VIEW).last
    fits_window(page, viewer)
    canvas = viewer.locator('.jupyter-matplotlib-canvas-div canvas').last
    zoom = viewer.locator('.widget-slider:has(label:text-is("zoom")) .widget-readout')
    view_text = lambda: viewer.locator('.widget-html', has_text='px at zoom').inner_text()
    info = lambda: viewer.locator('.widget-html', has_text='mosaic').last.inner_text()
    z0, v0, i0, png0 = zoom.inner_text(), view_text(), info(), shot(page, viewer, 'mosaic_viewer_0_start')
    pic0 = canvas.screenshot()
    box = canvas.bounding_box(); cx, cy = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
    page.mouse.move(cx, cy); page.mouse.wheel(0, -120)                                 # zoom in around the centre
    page.wait_for_function("([z, z0]) => z.textContent.trim() !== z0", arg=[zoom.element_handle(), z0], timeout=15_000)
    assert float(zoom.inner_text()) > float(z0) and canvas_changes(page, canvas, pic0)
    pic1 = shot(page, canvas, 'mosaic_viewer_1_zoomed')
    v1 = view_text()
    page.mouse.move(cx, cy); page.mouse.down(); page.mouse.move(cx - 80, cy - 40, steps=8); page.mouse.up()   # pan
    page.wait_for_function("([e, v1]) => !e.textContent.includes(v1)", arg=[viewer.element_handle(), v1], timeout=15_000)
    assert view_text() not in (v0, v1)
    assert canvas_changes(page, canvas, pic1)
    png2 = shot(page, viewer, 'mosaic_viewer_2_panned')
    page.mouse.click(cx + 20, cy + 20)                                                   # click a tile
    page.wait_for_function("([e, i0]) => ![...e.querySelectorAll('.widget-html')].some(h => h.innerText === i0)",
                           arg=[viewer.element_handle(), i0], timeout=15_000)
    assert 'cell x=' in info() and shot(page, viewer, 'mosaic_viewer_3_clicked') != png2
    tile_x = viewer.locator('.widget-text:has(label:text-is("tile x")) input')
    tile_x.fill('99'); tile_x.press('Enter')                                             # a cell without a tile
    page.wait_for_function("e => e.textContent.includes('no tile')", arg=viewer.element_handle(), timeout=15_000)
    assert no_broken_images(viewer)
    shot(page, viewer, 'mosaic_viewer_4_no_tile')
    assert not error_outputs(page) and not problems, (error_outputs(page), problems)
    print('saved file already clean:', save_and_check_clean(lab, page, '14_mosaic_viewer.ipynb'))
    shutdown_kernels(lab); page.close()
