"""``fakd explore``: the affinity explorer as a web page on this machine.

Voilà serves the explorer cells of ``01_affinity_explorer`` (those tagged ``explorer-app``: no prose,
no code, no printed output; the page is titled "Affinity explorer") with the command's choices as the
notebook's parameters: no Jupyter knowledge needed. The image and models are checked here first (a
bad path or checkpoint, or a model of another scale than the profile's, is one line, exit 2, before
any server starts). The server binds 127.0.0.1 unless ``--host`` says otherwise and prints the URL
once the page answers.

Kernels: each page load starts one (its models and features: ~0.6 GB). It is shut down when its page
closes (Voilà's page sends a beacon; Voilà's page sets no XSRF cookie, so the XSRF check, which only
guards that POST by the kernel's random id here, is off), and any kernel left without a connection
(a crashed browser, a lost network) is culled after ``CULL_IDLE_S`` idle seconds, checked every
``CULL_EVERY_S``: within a minute. Ctrl-C (or SIGTERM, SIGHUP) kills the kernels and stops the server
within ``STOP_WITHIN_S`` and removes its temporary folder; on Linux the server also stops if fakd
explore is killed outright.
"""

import argparse
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fakd.commands.common import add_data_root_argument, positive_int, require_notebook_tools
from fakd.errors import FakdError
from fakd.malloc import tuned_malloc_env
from fakd.zoo.pretrained import PRETRAINED_PREFIX

NOTEBOOK = "01_affinity_explorer"
DEFAULT_PORT = 8866
START_TIMEOUT_S = 120
OFFLINE_TEMPLATE = "fakd-offline"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
APP_TAG = "explorer-app"  # the notebook cells the page runs (with the parameters)
PAGE_TITLE = "Affinity explorer"
CULL_IDLE_S, CULL_EVERY_S = 40, 10  # culled 40-50 s after its last activity: gone within a minute
STOP_WITHIN_S = 2.0
# printed output is not part of the page, the widgets are (Voilà's lab page marks stdout text/plain)
HIDE_PRINTED = ('<style>.jp-OutputArea-child:has(> .jp-OutputArea-output[data-mime-type="text/plain"]), '
                '.jp-OutputArea-child:has(> .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"])'
                ' { display: none; }</style>\n')


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="serve the affinity explorer as a web page: click a pixel, see its affinity maps",
        description="Serve the affinity explorer (notebook 01_affinity_explorer through Voilà) as a page on "
        "this machine: click a pixel of the image and its affinity rows in teacher and student update at once; "
        "agreement maps and crop matrices, with colour bars; upload your "
        "own image (a region of it at full resolution) or add your own model in the page. A page's kernel is shut "
        f"down when the page closes, or within a minute when its page went away without saying so (idle "
        f"{CULL_IDLE_S} s, checked every {CULL_EVERY_S} s). Ctrl-C stops it.",
    )
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL",
                        help="a model to explore as a student: fakd:<name>, a checkpoint file or a run folder "
                        "at the profile's scale (repeatable; the first is shown first; one already listed is not "
                        "added twice)")
    parser.add_argument("--teacher", default="", metavar="MODEL",
                        help="the teacher to compare with (same kinds; default: the profile's shipped teacher)")
    parser.add_argument("--image", default="", metavar="FILE",
                        help="your image, as the models' LR input (larger than --crop: a --crop sized region at "
                        "full resolution, movable in the page)")
    parser.add_argument("--profile", default="cpu",
                        help="whose shipped models, and the scale every model must have (default cpu: x4)")
    parser.add_argument("--crop", type=positive_int, default=64, help="LR side of the explorer's images (default 64)")
    add_data_root_argument(parser)
    parser.add_argument("--port", type=positive_int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.set_defaults(handler=run)


def checked_parameters(args: argparse.Namespace) -> dict:
    """The notebook's parameters from the arguments, with the image and models checked (FakdError)."""
    models = [*args.checkpoint, *([args.teacher] if args.teacher else [])]
    if args.image or models:  # torch and the models load only when there is something of yours to check
        from fakd.analysis.explorer_sources import explorer_model, image_from_file
        from fakd.train.config import load_run_config

        if args.image:
            image_from_file(args.image, max_side=args.crop)
        scale = load_run_config(args.profile).scale
        for spec in models:
            explorer_model(spec, scale=scale, device="cpu")

    def absolute(spec: str) -> str:
        return spec if spec.startswith(PRETRAINED_PREFIX) else str(Path(spec).expanduser().resolve())

    return {"profile": args.profile, "crop": args.crop, "data_root": args.data_root,
            "image_path": absolute(args.image) if args.image else "",
            "checkpoints": [absolute(spec) for spec in args.checkpoint],
            "teacher_checkpoint": absolute(args.teacher) if args.teacher else "", "save_figures": False}


def write_app_notebook(folder: Path, parameters: dict) -> Path:
    """The explorer notebook's page, written into ``folder``: its parameter cell, ``parameters`` in an
    ``injected-parameters`` cell after it (as papermill writes them), and the cells tagged
    ``explorer-app`` (the prose and the summaries are for JupyterLab), titled "Affinity explorer".

    Plain JSON, not papermill or nbformat: importing those takes seconds on a busy machine and makes
    this process slow to exit, and Ctrl-C must stop everything within ``STOP_WITHIN_S``."""
    from fakd.study.locations import resolve_notebook

    notebook = json.loads(resolve_notebook(NOTEBOOK).read_text(encoding="utf-8"))
    values = {**parameters, "run_dir": str(folder / "run")}
    injected = {"cell_type": "code", "execution_count": None, "id": "injected-parameters", "outputs": [],
                "metadata": {"tags": ["injected-parameters"]},
                "source": "# Parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in values.items()) + "\n"}
    cells = []
    for cell in notebook["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "parameters" in tags:
            cells += [cell, injected]
        elif APP_TAG in tags:
            cells.append(cell)
    notebook["cells"] = cells
    notebook["metadata"]["title"] = PAGE_TITLE
    path = folder / f"{NOTEBOOK}.ipynb"
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def write_offline_template(folder: Path) -> Path:
    """A Voilà template ``fakd-offline`` under ``folder`` (put on JUPYTER_PATH): Voilà's ``lab`` page
    without its two icon-font stylesheets from a CDN, so the page loads nothing from the network
    (offline, those were failed loads and console errors; the widgets' text labels stay), and with
    printed output hidden."""
    from jupyter_core.paths import jupyter_path

    source = next((Path(base) / "lab" / "index.html.j2" for base in jupyter_path("voila", "templates")
                   if (Path(base) / "lab" / "index.html.j2").is_file()), None)
    if source is None:
        raise FakdError("Voilà's lab template is missing: reinstall with pip install 'fakd[notebooks]'")
    target = folder / "voila" / "templates" / OFFLINE_TEMPLATE
    target.mkdir(parents=True)
    page = "".join(line for line in source.read_text().splitlines(keepends=True) if not ("<link" in line and "https://" in line))
    end_of_styles = "{%- endblock notebook_css -%}"
    if end_of_styles not in page:
        raise FakdError("Voilà's lab template has changed (no notebook_css block): reinstall fakd[notebooks]")
    page = page.replace(end_of_styles, HIDE_PRINTED + end_of_styles, 1)
    (target / "index.html.j2").write_text(page)
    (target / "conf.json").write_text('{"base_template": "lab"}\n')
    return folder


def server_command(notebook: Path, *, host: str, port: int) -> list[str]:
    """Voilà on ``notebook``: offline template, kernels shut down with their page or culled when idle."""
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
            f"--Voila.ip={host}", "--Voila.log_level=WARN", f"--template={OFFLINE_TEMPLATE}",
            "--Voila.tornado_settings={'websocket_max_message_size': 104857600, 'disable_check_xsrf': True}",
            f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_S}",
            f"--MappingKernelManager.cull_interval={CULL_EVERY_S}",
            "--MappingKernelManager.cull_connected=False", "--MappingKernelManager.cull_busy=False"]


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # as the server binds: a port left in TIME_WAIT by a server stopped with pages open is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise FakdError(f"cannot serve on {host}:{port}: {error.strerror or error} (choose another --port)") from None


def wait_until_serving(host: str, port: int, process: subprocess.Popen) -> None:
    """Return once the server accepts connections (a page request would start a kernel)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FakdError(f"the explorer's server (Voilà) exited with code {process.returncode} at start")
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise FakdError(f"the explorer's server did not answer on {host}:{port} within {START_TIMEOUT_S} s")


def kernel_processes(process: subprocess.Popen) -> list:
    """The server's kernels (its child processes running ipykernel); psutil processes."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels within ``STOP_WITHIN_S``: the kernels (each in its own session,
    out of the server's process group) and the server's group are killed at once — they hold nothing
    to save (Voilà's files are in our temporary folder); on SIGTERM Voilà waited for its kernels'
    shutdown, 5.4–6 s with one kernel."""
    import psutil

    if process.poll() is not None:
        return
    kernels = kernel_processes(process)
    for kernel in kernels:
        try:
            kernel.kill()
        except psutil.Error:
            pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + STOP_WITHIN_S / 2  # SIGKILL takes effect within milliseconds
    while any(_running(kernel) for kernel in kernels) and time.monotonic() < deadline:
        time.sleep(0.02)


def _running(process) -> bool:
    """Whether a psutil process still runs (a killed one waiting to be reaped holds no memory)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM / SIGHUP stop the server like Ctrl-C


def _die_with_parent() -> None:
    """In the server's process (Linux): get SIGTERM when fakd explore dies, even by SIGKILL, so no
    orphaned server (and its kernel) is left behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass  # not Linux: Ctrl-C and SIGTERM still stop the server


def run(args: argparse.Namespace) -> int:
    require_notebook_tools()
    if importlib.util.find_spec("voila") is None:
        raise FakdError("fakd explore needs Voilà: pip install 'fakd[notebooks]'")
    check_port_free(args.host, args.port)
    import psutil  # noqa: F401 (stop() uses it: imported now, not after Ctrl-C)

    parameters = checked_parameters(args)
    with tempfile.TemporaryDirectory(prefix="fakd-explore-") as folder:
        notebook = write_app_notebook(Path(folder), parameters)
        environment = tuned_malloc_env(os.environ)
        templates = write_offline_template(Path(folder) / "jupyter")
        environment["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(templates), environment.get("JUPYTER_PATH")]))
        environment["JUPYTER_RUNTIME_DIR"] = str(Path(folder) / "runtime")  # connection files go with the folder
        command = server_command(notebook, host=args.host, port=args.port)
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, _interrupted)
        # Ctrl-C stops the server even when this process was started with SIGINT ignored (a disposition
        # inherited from its parent, e.g. a test runner's worker or a shell's background job)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        process = subprocess.Popen(command, cwd=folder, env=environment, start_new_session=True,
                                   preexec_fn=_die_with_parent)
        host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{host}:{args.port}/"
        try:
            wait_until_serving(args.host, args.port, process)
            print(f"fakd explore: the affinity explorer is at {url} (Ctrl-C stops it)", flush=True)
            if args.host not in LOOPBACK:
                print(f"fakd explore: warning: {args.host} is reachable from other machines; anyone who can reach "
                      "it can use the explorer, and its path fields read files this account can read",
                      file=sys.stderr, flush=True)
            code = process.wait()
        except KeyboardInterrupt:
            stop(process)
            print("fakd explore: stopped", file=sys.stderr)
            return 0
        finally:
            stop(process)
    if code:
        raise FakdError(f"the explorer's server (Voilà) stopped with code {code}")
    return 0
