"""A cluster on one machine: hosts as network namespaces on one bridge, and mpiexec across them.

Each host h0, h1, ... is a network namespace with one link (eth0, 10.77.0.{i+1}/24) into
a bridge that lives in a namespace of its own, so that nothing is added to the machine's
own network. Commands run on a host under `ip netns exec` and `unshare --uts --mount`:
the host's name, /etc/hosts naming every host, and optionally its node-local folder
(ROOT/nodes/HOST seen as ROOT/local). mpiexec (MPICH's hydra) runs on h0 and starts its
proxies on the other hosts through a launcher script in place of ssh; UCX is held to
TCP (`UCX_TLS=tcp,self`), else it finds shared memory and bypasses the links.

Needs root. Usage:

    python tools/cluster.py up ROOT --hosts 3 [--rate 1gbit] [--local]
    python tools/cluster.py exec ROOT -- mpiexec -n 3 -ppn 1 python -m ghostmlp train ...
    python tools/cluster.py down ROOT
    python tools/cluster.py cleanup            # every cluster this tool made, and its processes

`exec` runs on h0 with `mpiexec` given the hosts and the launcher; every run has a time
limit (--timeout, 600 s), after which every process in the cluster is killed.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

PREFIX = "gmlp-"            # every namespace this tool makes starts with it
SUBNET = "10.77.0"
TCP_ONLY = {"UCX_TLS": "tcp,self"}


class ClusterError(RuntimeError):
    """The machine cannot host a cluster (not root, no `ip`/`unshare`, no namespaces)."""


def can_build():
    """None when this machine can host a cluster, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [tool for tool in ("ip", "unshare", "mount", "hostname") if not shutil.which(tool)]
    if missing:
        return f"needs {', '.join(missing)}"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def sh(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode:
        raise ClusterError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


class Cluster:
    """n_hosts hosts h0.. under `root` (a folder: bin/, hosts, nodes/HOST/, local/, shared/).

    rate: a tbf rate for every host's link ("1gbit"), or None; local: each host sees its
    own ROOT/nodes/HOST as ROOT/local. Use as a context manager, or call up() and down().
    """

    def __init__(self, root, n_hosts=2, rate=None, local=True, name=None):
        self.root, self.n_hosts, self.rate, self.local = Path(root).resolve(), n_hosts, rate, local
        self.name = name or f"{PREFIX}{uuid.uuid4().hex[:8]}"
        self.hosts = [f"h{i}" for i in range(n_hosts)]
        self.shared = self.root / "shared"
        self.local_folder = self.root / "local"

    def namespace(self, host):
        return f"{self.name}-{host}"

    @property
    def namespaces(self):
        return [self.namespace(host) for host in self.hosts] + [f"{self.name}-switch"]

    def address(self, host):
        return f"{SUBNET}.{self.hosts.index(host) + 1}"

    # ------------------------------------------------------------ up, down

    def up(self):
        try:
            self._write_files()
            switch = f"{self.name}-switch"
            sh("ip", "netns", "add", switch)
            sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", switch, "link", "set", "br0", "up")
            for host in self.hosts:
                ns = self.namespace(host)
                sh("ip", "netns", "add", ns)
                sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                   "peer", "name", host, "netns", switch)
                sh("ip", "-n", switch, "link", "set", host, "master", "br0", "up")
                sh("ip", "-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                if self.rate:
                    self.shape(host, self.rate)
        except BaseException:
            self.down()
            raise
        return self

    def _write_files(self):
        for folder in ("bin", "shared", "local", *(f"nodes/{h}" for h in self.hosts)):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
            f"{self.address(h)} {h}\n" for h in self.hosts))
        bind = (f' && mount --bind "{self.root}/nodes/$0" "{self.local_folder}"'
                if self.local else "")
        # on HOST COMMAND...: COMMAND on HOST, with its name, its /etc/hosts, its local folder.
        self._script("on", f"""host=$1; shift
exec ip netns exec "{self.name}-$host" unshare --uts --mount sh -c \\
  'hostname "$0" && mount --bind "{self.root}/hosts" /etc/hosts{bind} && exec "$@"' "$host" "$@"
""")
        # hydra calls its ssh as: ssh [-x] HOST "COMMAND LINE".
        self._script("ssh", f"""while [ "${{1#-}}" != "$1" ]; do shift; done
host=$1; shift
exec "{self.root}/bin/on" "$host" sh -c "$*"
""")
        (self.root / "cluster.json").write_text(json.dumps(
            {"name": self.name, "hosts": self.hosts, "rate": self.rate, "local": self.local}))

    def _script(self, name, body):
        path = self.root / "bin" / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def down(self):
        """Kill every process in the cluster's namespaces, then delete them (idempotent)."""
        remove(self.namespaces)

    def __enter__(self):
        return self.up()

    def __exit__(self, *_):
        self.down()

    # ----------------------------------------------------------- the links

    def shape(self, host, rate):
        """Limit host's link to `rate` (tc tbf, e.g. "100mbit")."""
        sh("ip", "netns", "exec", self.namespace(host), "tc", "qdisc", "replace", "dev", "eth0",
           "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms")

    def link(self, host, up):
        """Take host's link down (up=False) or bring it back."""
        sh("ip", "-n", self.namespace(host), "link", "set", "eth0", "up" if up else "down")

    def pids(self, host=None):
        """The processes running on host (on every host when None)."""
        return pids_in([self.namespace(host)] if host else self.namespaces)

    # ------------------------------------------------------------- running

    def on(self, host, command):
        """The command line that runs `command` (a list) on host."""
        return [str(self.root / "bin" / "on"), host, *map(str, command)]

    def mpiexec(self, mpiexec, ranks, command, ppn=1, env=None):
        """The command line (run on h0) of `command` on `ranks` ranks, `ppn` per host, across
        the hosts; env: variables for every rank (TCP_ONLY is always added)."""
        hosts = self.hosts[:max(1, -(-ranks // ppn))]
        variables = [item for key, value in {**TCP_ONLY, **(env or {})}.items()
                     for item in ("-genv", key, str(value))]
        return self.on("h0", [mpiexec, "-launcher", "ssh", "-launcher-exec",
                              self.root / "bin" / "ssh", "-hosts", ",".join(hosts),
                              "-n", ranks, "-ppn", ppn, *variables, *command])

    def start(self, command, **popen):
        """Popen of a command line from on() or mpiexec(); stdout and stderr piped unless
        given (a long run's output would fill a pipe that nobody reads until the end)."""
        popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
        return subprocess.Popen(command, text=True, **popen)

    def wait(self, process, timeout):
        """(returncode, stdout, stderr, seconds) of a started process; past `timeout` seconds
        every process in the cluster is killed and subprocess.TimeoutExpired raised."""
        started = time.monotonic()
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(self.pids())
            process.kill()
            out, err = process.communicate()
            raise subprocess.TimeoutExpired(process.args, timeout, out, err) from None
        return process.returncode, out or "", err or "", time.monotonic() - started

    def run(self, command, timeout=600, **popen):
        return self.wait(self.start(command, **popen), timeout)


# -------------------------------------------------------------- cleaning up

def pids_in(namespaces):
    found = []
    for ns in namespaces:
        result = sh("ip", "netns", "pids", ns, check=False)
        found += [int(pid) for pid in result.stdout.split()]
    return found


def kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove(namespaces):
    """Kill the processes of the namespaces that exist, then delete those namespaces."""
    existing = set(all_namespaces())
    namespaces = [ns for ns in namespaces if ns in existing]
    for _ in range(50):
        pids = pids_in(namespaces)
        if not pids:
            break
        kill(pids)
        time.sleep(0.1)
    for ns in namespaces:
        sh("ip", "netns", "delete", ns, check=False)


def all_namespaces(prefix=PREFIX):
    result = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in result.stdout.splitlines()
            if line.startswith(prefix)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create the hosts under ROOT")
    up.add_argument("root")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--rate", help="tbf rate of every link, e.g. 1gbit")
    up.add_argument("--local", action="store_true", help="a node-local ROOT/local on each host")
    run = commands.add_parser("exec", help="run a command on h0 (mpiexec gets the hosts)")
    run.add_argument("root")
    run.add_argument("--timeout", type=float, default=600)
    run.add_argument("argv", nargs="*", help="after --: the command")
    down = commands.add_parser("down", help="remove the cluster under ROOT")
    down.add_argument("root")
    commands.add_parser("cleanup", help=f"remove every {PREFIX}* namespace and its processes")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.argv = command or getattr(args, "argv", [])
    if args.command == "cleanup":
        remove(all_namespaces())
        return 0
    if args.command == "up":
        reason = can_build()
        if reason:
            raise SystemExit(f"cluster: {reason}")
        Cluster(args.root, args.hosts, rate=args.rate, local=args.local).up()
        print(f"cluster under {args.root}: hosts h0..h{args.hosts - 1}")
        return 0
    saved = json.loads((Path(args.root) / "cluster.json").read_text())
    cluster = Cluster(args.root, len(saved["hosts"]), saved["rate"], saved["local"], saved["name"])
    if args.command == "down":
        cluster.down()
        return 0
    argv = args.argv
    if argv and Path(argv[0]).name == "mpiexec":
        ranks = int(argv[argv.index("-n") + 1])
        ppn = int(argv[argv.index("-ppn") + 1]) if "-ppn" in argv else 1
        rest = [a for i, a in enumerate(argv[1:], 1)
                if a not in ("-n", "-ppn") and argv[i - 1] not in ("-n", "-ppn")]
        command = cluster.mpiexec(argv[0], ranks, rest, ppn)
    else:
        command = cluster.on("h0", argv)
    code, out, err, _ = cluster.run(command, timeout=args.timeout)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
