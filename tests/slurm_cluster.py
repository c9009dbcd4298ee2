"""A single-node Slurm cluster for the tests, started from nothing as root (Debian's
slurm-wlm and munge) and stopped by its pid files; the recipe measured in this sandbox:
munged as the munge user, slurmctld and slurmd on 127.0.0.1, process tracking by
/proc (cgroup tracking without a cgroup.conf drains the node and reports jobs COMPLETED
with no output), no accounting database (follow jobs with squeue/scontrol)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "sbatch", "munged", "munge")


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "not root: the test cluster's daemons start as root"
    absent = [p for p in PACKAGES if shutil.which(p) is None and not Path(f"/usr/sbin/{p}").exists()]
    if absent:
        return f"no {', '.join(absent)}: apt-get install slurm-wlm munge (Debian)"
    return None


def _run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, check=check, **kw)


def start(folder: Path) -> dict[str, str]:
    """The cluster up, its node idle; returns the environment its commands need (SLURM_CONF)."""
    host = socket.gethostname().split(".")[0]
    if not Path("/run/munge/munge.socket.2").exists():
        _run("install", "-d", "-o", "munge", "-g", "munge", "/run/munge")
        _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
        (folder / "started-munged").write_text("")  # stop() stops it too
    for _ in range(50):
        if _run("bash", "-c", "munge -n | unmunge", check=False).returncode == 0:
            break
        time.sleep(0.1)
    node = _run("slurmd", "-C").stdout.splitlines()[0].split()
    fields = dict(f.split("=", 1) for f in node if "=" in f)
    memory = max(512, int(fields.get("RealMemory", "2048")) - 1024)
    topology = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("NodeName", "RealMemory", "UpTime"))
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=joulebench", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "AuthType=auth/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/linux",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={folder / 'jobcomp.txt'}", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "MailProg=/bin/true", f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ReturnToService=2", "MinJobAge=300",
        f"NodeName={host} NodeAddr=127.0.0.1 {topology} RealMemory={memory} State=UNKNOWN",
        "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    _run("slurmctld", env=env)
    _run("slurmd", env=env)
    for _ in range(300):
        state = _run("sinfo", "-h", "-N", "-o", "%T", env=env, check=False).stdout.strip()
        if state == "idle":
            return {"SLURM_CONF": str(conf)}
        time.sleep(0.1)
    stop(folder)
    raise RuntimeError(f"the test cluster's node never became idle ({state!r}): see {folder}/slurmctld.log")


def stop(folder: Path) -> None:
    """Every daemon the cluster started, by its pid file (munged only if it started it)."""
    files = [folder / "slurmd.pid", folder / "slurmctld.pid"]
    if (folder / "started-munged").exists():
        files.append(Path("/run/munge/munged.pid"))
    for pid_file in files:
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
        except (OSError, ValueError):
            continue
