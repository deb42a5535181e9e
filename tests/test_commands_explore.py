"""``fakd explore``'s checks before any server starts: a bad image, model or port is one line, exit 2;
and the page it serves is the explorer notebook with the command's choices as parameters."""

import socket
from pathlib import Path

import nbformat
import pytest
from guarantees_support import random_image

from fakd.cli import main
from fakd.commands.explore import (CULL_EVERY_S, CULL_IDLE_S, HIDE_PRINTED, OFFLINE_TEMPLATE, server_command,
                                   write_app_notebook, write_offline_template)


def one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("fakd explore: error:"), err
    return err[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # loads torch and the shipped models in-process: ~10 s on a loaded machine
def test_a_bad_image_or_model_is_one_line_before_any_server_starts(tmp_path, capsys):
    corrupt = tmp_path / "holiday.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff" + b"\x00" * 20)
    port = str(free_port())
    assert "holiday.jpg" in one_line(capsys, main(["explore", "--image", str(corrupt), "--port", port]))
    assert "missing.png" in one_line(capsys, main(["explore", "--image", str(tmp_path / "missing.png"), "--port", port]))
    assert "nope.pt" in one_line(capsys, main(["explore", "--checkpoint", str(tmp_path / "nope.pt"), "--port", port]))
    assert "no shipped model" in one_line(capsys, main(["explore", "--teacher", "fakd:nope", "--port", port]))
    assert "without a trained model" in one_line(capsys, main(["explore", "--checkpoint", str(tmp_path), "--port", port]))
    line = one_line(capsys, main(["explore", "--checkpoint", "fakd:rcan-cpu-student-fakd-x2-s0", "--port", port]))
    assert line == ("fakd explore: error: fakd:rcan-cpu-student-fakd-x2-s0 is a ×2 model; the explorer compares ×4 "
                    "models (the profile sets the scale)")


def test_a_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        line = one_line(capsys, main(["explore", "--port", str(taken.getsockname()[1])]))
    assert "choose another --port" in line


def test_the_served_page_is_the_explorer_alone_with_the_choices_and_loads_nothing_from_the_network(tmp_path):
    image = random_image(tmp_path / "mine.png")
    path = write_app_notebook(tmp_path, {"image_path": str(image), "checkpoints": ["fakd:x"], "save_figures": False})
    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    injected = next(cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", []))
    assert f"image_path = {str(image)!r}" in injected.source and "checkpoints = ['fakd:x']" in injected.source
    assert "save_figures = False" in injected.source and "explorer_app(" in notebook.cells[-1].source
    # no prose, no summaries, no saved figures: the parameters, the set-up and the widgets, titled
    assert [cell.cell_type for cell in notebook.cells] == ["code"] * 4 and notebook.metadata["title"] == "Affinity explorer"
    assert not any("print(" in cell.source or "save_figure(" in cell.source for cell in notebook.cells)
    template = write_offline_template(tmp_path / "jupyter") / "voila" / "templates" / OFFLINE_TEMPLATE
    page = (template / "index.html.j2").read_text()
    assert "https://" not in "".join(line for line in page.splitlines() if "<link" in line) and "extends" in page
    assert page.index(HIDE_PRINTED) < page.index("endblock notebook_css")  # printed output hidden


def test_kernels_are_culled_within_a_minute_without_their_page():
    command = " ".join(server_command(Path("explorer.ipynb"), host="127.0.0.1", port=1))
    assert CULL_IDLE_S + CULL_EVERY_S <= 50  # and the shutdown itself: gone within a minute
    assert f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_S}" in command
    assert f"--MappingKernelManager.cull_interval={CULL_EVERY_S}" in command
    assert "--MappingKernelManager.cull_connected=False" in command and "'disable_check_xsrf': True" in command


@pytest.mark.slow  # starts a real server: seconds
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_server_stops_with_the_command_however_it_ends(tmp_path, how):
    """SIGTERM stops it like Ctrl-C (exit 0, temporary folder removed); after SIGKILL, the server
    (Linux: parent-death signal) still stops, so no orphan holds the port."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    environment = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "fakd.cli", "explore", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
    assert f":{port}/" in process.stdout.readline()
    process.send_signal(getattr(signal, how))
    code = process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the server still holds the port"
                time.sleep(0.5)
    if how == "SIGTERM":
        assert code == 0 and not list(tmp_path.glob("fakd-explore-*"))
