"""./dev and the scripts behind it, as a newcomer meets them (issue 28):
build errors shown as the compiler printed them, apt waiting for another
apt's lock instead of failing."""

import os
import re
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "endpoint/models/examples/mmio.c"


def tree_copy(dest):
    """The repository's tracked files (as the working tree has them), in
    @dest: a clone without anyone's build/."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                           stdout=subprocess.PIPE).stdout.split(b"\0")
    for f in filter(None, files):
        src = os.path.join(REPO.encode(), f)
        dst = os.path.join(str(dest).encode(), f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.exists(src):
            with open(src, "rb") as i, open(dst, "wb") as o:
                o.write(i.read())
            os.chmod(dst, os.stat(src).st_mode)
    return dest


def dev_build(tree):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run([os.path.join(tree, "dev"), "build"], cwd=tree, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)


def test_build_shows_the_compilers_warnings_and_errors(tmp_path):
    """A model edited as a newcomer would: a warning is shown and the build
    goes on; a missing ';' stops it with file:line: error: and the line."""
    tree = str(tree_copy(tmp_path / "clone"))
    path = os.path.join(tree, MODEL)
    src = open(path).read()
    # An unused variable in the model's first function.
    body = src.index("{\n", src.index("\nstatic "))
    warned = src[:body + 2] + "\tint newcomer_unused = 0;\n" + src[body + 2:]
    open(path, "w").write(warned)
    r = dev_build(tree)
    assert r.returncode == 0, r.stdout[-3000:]
    assert re.search(r"models/examples/mmio\.c:\d+:\d+: warning: unused variable "
                     r".newcomer_unused.", r.stdout), r.stdout[-3000:]

    # Then the first statement's ';' dropped.
    semi = src.index(";", body)
    open(path, "w").write(src[:semi] + src[semi + 1:])
    r = dev_build(tree)
    assert r.returncode != 0, r.stdout[-3000:]
    assert re.search(r"models/examples/mmio\.c:\d+:\d+: error: ", r.stdout), \
        r.stdout[-3000:]


class LockHolder:
    """A process of ours holding an fcntl lock on @path (as apt takes its
    locks), until release()."""

    def __init__(self, path):
        code = ("import fcntl, os, sys\n"
                "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)\n"
                "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "sys.stdin.read()\n")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", code, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture
def private_apt(tmp_path):
    """apt-get options for an 'apt-get update' of its own: lists, cache and
    (empty) sources under @tmp_path, so the machine's apt is not touched
    and no network is needed; the lists lock is tmp_path/lists/lock."""
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "sources.list").write_text("")
    (tmp_path / "sources.list.d").mkdir()
    opts = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={tmp_path}/cache",
            "-o", f"Dir::Etc::sourcelist={tmp_path}/sources.list",
            "-o", f"Dir::Etc::sourceparts={tmp_path}/sources.list.d"]
    return opts, str(lists / "lock")


def apt_get(opts, wait, *args):
    """scripts/apt-lock.sh's apt_get, started in the background."""
    script = '. scripts/apt-lock.sh; apt_get "$@"'
    env = dict(os.environ, PCIEFW_APT_WAIT=str(wait), SUDO="")
    return subprocess.Popen(["bash", "-c", script, "apt_get", *opts, *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get update needs root")
def test_apt_waits_for_a_held_lock_then_succeeds(private_apt):
    opts, lock = private_apt
    holder = LockHolder(lock)
    p = apt_get(opts, 120, "update", "-qq")
    try:
        # It says it waits (stderr, read as it comes) and keeps waiting
        # while the lock is held: several of its 3 s retries.
        line = p.stderr.readline()
        assert "another apt holds its lock; waiting up to 120 s" in line, line
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            assert p.poll() is None, p.communicate()
            time.sleep(0.5)
        holder.release()
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
        assert "Could not get lock" not in err, err
    finally:
        holder.release()
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get update needs root")
def test_apt_gives_up_after_its_bound_with_apts_message(private_apt):
    opts, lock = private_apt
    holder = LockHolder(lock)
    try:
        p = apt_get(opts, 2, "update", "-qq")
        out, err = p.communicate(timeout=60)
    finally:
        holder.release()
    assert p.returncode != 0
    assert "waiting up to 2 s" in err and "Could not get lock" in err, err


def guest_env(path_var):
    """build-guest.sh --print-env run with PATH=@path_var: its GUEST_*
    variables and what it said."""
    env = dict(os.environ, PATH=path_var)
    r = subprocess.run([os.path.join(REPO, "tests", "guest", "build-guest.sh"),
                        "--print-env"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return dict(l.split("=", 1) for l in r.stdout.splitlines()), r.stderr


def test_cached_guest_image_is_not_rebuilt_for_another_path():
    """The demo, the tests and a user's shell find the same tools under
    other names (/sbin or /usr/sbin first on PATH): the cached base image
    is theirs all the same, never rebuilt."""
    first, _ = guest_env("/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    second, said = guest_env("/bin:/sbin:/usr/bin:/usr/sbin")
    assert second["GUEST_BASE"] == first["GUEST_BASE"], said
    assert "up to date" in said and "building base rootfs" not in said, said


def test_dev_qemu_runs_the_projects_qemu(qemu_binary):
    """./dev qemu ARGS is the QEMU with the pciefw device, and
    build/qemu-system-x86_64 (the README's by-hand commands) is it too."""
    env = dict(os.environ, PCIEFW_QEMU_PREBUILT=qemu_binary)
    r = subprocess.run([os.path.join(REPO, "dev"), "qemu", "-device", "help"], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'name "pciefw"' in r.stdout and 'name "pciefw-epc"' in r.stdout, r.stdout
    link = os.path.join(REPO, "build", "qemu-system-x86_64")
    assert os.path.realpath(link) == os.path.realpath(qemu_binary)
    r = subprocess.run([os.path.join(REPO, "dev"), "help"], stdout=subprocess.PIPE,
                       text=True, timeout=60)
    for said in ("./dev qemu ARGS", "build/qemu-system-x86_64", "build/guest/vmlinux",
                 "build/guest/initrd.cpio.gz", "./dev tls-certs DIR"):
        assert said in r.stdout, (said, r.stdout)
