"""Integration tests for hotline.pbx and hotline.chroot against real Asterisk processes.

They build (once, a few minutes) or reuse the Debian sid chroot named by
HOTLINE_ASTERISK_CACHE (default /var/cache/hotline/asterisk-sid) and need root
for debootstrap, chroot and bind mounts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hotline.chroot import chroot_mounts, ensure_chroot
from hotline.pbx import AsteriskInstance
from hotline.sysrun import PbxError

pytestmark = pytest.mark.asterisk

CACHE_DIR = Path(os.environ.get("HOTLINE_ASTERISK_CACHE", "/var/cache/hotline/asterisk-sid"))


@pytest.fixture(scope="module")
def chroot() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root for chroot and bind mounts")
    return ensure_chroot(CACHE_DIR)


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def write_minimal_config(
    inst: AsteriskInstance, addr: str, port: int, modules: str = "[modules]\nautoload = yes\n"
) -> None:
    inst.write_asterisk_conf()
    etc = inst.etc_dir
    (etc / "modules.conf").write_text(modules)
    (etc / "logger.conf").write_text("[general]\n\n[logfiles]\nmessages => notice,warning,error\n")
    (etc / "pjsip.conf").write_text(
        f"[transport-udp]\ntype = transport\nprotocol = udp\nbind = {addr}:{port}\n"
    )


def _mounts_for(root: Path, inst: AsteriskInstance) -> list[str]:
    inside = str(root / inst.state_dir.relative_to("/"))
    return [m for m in chroot_mounts(root) if m.startswith(inside)]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


Pair = tuple[AsteriskInstance, AsteriskInstance, int, int]


@pytest.fixture
def two_instances(chroot: Path, tmp_path: Path) -> Iterator[Pair]:
    shared = tmp_path / "shared"
    shared.mkdir()
    pbx = AsteriskInstance("pbx", tmp_path / "pbx", root=chroot, binds=(shared,))
    carrier = AsteriskInstance("carrier", tmp_path / "carrier", root=chroot, binds=(shared,))
    pbx_port, carrier_port = free_udp_port("127.0.0.1"), free_udp_port("127.0.0.2")
    write_minimal_config(pbx, "127.0.0.1", pbx_port)
    write_minimal_config(carrier, "127.0.0.2", carrier_port)
    try:
        yield pbx, carrier, pbx_port, carrier_port
    finally:
        carrier.stop()
        pbx.stop()


def test_two_instances_side_by_side(two_instances: Pair, chroot: Path) -> None:
    pbx, carrier, pbx_port, carrier_port = two_instances
    pbx.start()
    carrier.start()
    assert pbx.is_running() and carrier.is_running()
    pbx.start()  # already running: no-op, and no stacked mounts
    shared = pbx.binds[0]
    shared_in_root = str(chroot / shared.relative_to("/"))
    assert chroot_mounts(chroot).count(shared_in_root) == 1

    for inst in (pbx, carrier):
        assert inst.version().startswith("Asterisk 2"), inst.version()
        assert _mounts_for(chroot, inst)
        # What Asterisk writes inside the chroot lands at the same host path.
        assert (inst.log_dir / "messages").stat().st_size > 0

    pbx_tr = pbx.cli("pjsip show transports")
    carrier_tr = carrier.cli("pjsip show transports")
    assert f"127.0.0.1:{pbx_port}" in pbx_tr and "127.0.0.2" not in pbx_tr
    assert f"127.0.0.2:{carrier_port}" in carrier_tr and "127.0.0.1:" not in carrier_tr

    # Each instance answers to its own systemname.
    assert "pbx" in pbx.cli("core show settings")
    assert "carrier" in carrier.cli("core show settings")

    # asterisk -rx against both instances at the same time.
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: i.version(), [pbx, carrier] * 8))
    assert all(o.startswith("Asterisk 2") for o in outs)

    pids = {inst.name: int(inst.pid_path.read_text()) for inst in (pbx, carrier)}
    pbx.stop()
    # Stopping one must not disturb the other, nor a bind they share.
    assert carrier.is_running()
    assert carrier.version().startswith("Asterisk 2")
    assert shared_in_root in chroot_mounts(chroot)
    carrier.stop()
    pbx.stop()  # idempotent

    for inst in (pbx, carrier):
        assert not inst.is_running()
        assert _gone(pids[inst.name])
        assert _mounts_for(chroot, inst) == []
    assert shared_in_root not in chroot_mounts(chroot)
    # Mount points created in the shared chroot are removed again.
    assert not (chroot / pbx.state_dir.relative_to("/")).exists()


def test_deep_state_dir_uses_short_run_dir(chroot: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 40) / "pbx"
    inst = AsteriskInstance("deep", deep, root=chroot)
    assert len(str(inst.ctl_path)) <= 100
    assert not str(inst.run_dir).startswith(str(deep))
    write_minimal_config(
        inst,
        "127.0.0.1",
        free_udp_port("127.0.0.1"),
        modules="[modules]\nautoload = no\nload = res_pjsip.so\n",
    )
    try:
        inst.start()
        assert inst.version().startswith("Asterisk 2")
    finally:
        inst.stop()
    assert not inst.is_running()
    assert [m for m in chroot_mounts(chroot) if str(inst.run_dir) in m or str(deep) in m] == []


def test_failed_start_raises_with_log_tail(chroot: Path, tmp_path: Path) -> None:
    inst = AsteriskInstance("broken", tmp_path / "broken", root=chroot)
    write_minimal_config(
        inst,
        "127.0.0.1",
        free_udp_port("127.0.0.1"),
        modules="[modules]\nautoload = no\nrequire = res_no_such_module.so\n",
    )
    try:
        with pytest.raises(PbxError) as err:
            inst.start(timeout=30)
    finally:
        inst.stop()
    # The message carries the log line naming the module that broke the boot.
    assert "res_no_such_module" in str(err.value)
    assert "[broken]" in str(err.value)
    assert not inst.is_running()
    assert not inst.ctl_path.exists()
    assert _mounts_for(chroot, inst) == []


def test_cli_on_stopped_instance_and_bad_root_raise(chroot: Path, tmp_path: Path) -> None:
    inst = AsteriskInstance("idle", tmp_path / "idle", root=chroot)
    inst.write_asterisk_conf()
    with pytest.raises(PbxError, match="core show version"):
        inst.cli("core show version")
    inst.stop()  # stopping a stopped instance is a no-op

    empty_root = tmp_path / "not-a-chroot"
    empty_root.mkdir()
    bad = AsteriskInstance("bad", tmp_path / "bad", root=empty_root)
    with pytest.raises(PbxError, match="ensure_chroot"):
        bad.start()
