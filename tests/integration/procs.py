"""A fl0wer daemon run by an integration test: started with its stderr
(and, if asked, its stdout) in files, waited for until it listens, and
stopped with SIGTERM.  Shared by the tests that run fl0wer-sensor."""

import signal
import subprocess
import time


class Daemon:
    """One process; stderr goes to err_path, stdout to out_path or
    nowhere."""

    def __init__(self, args, err_path, out_path=None):
        self.err_path = err_path
        self.out_path = out_path
        self.err = open(err_path, "w")
        self.out = open(out_path, "w") if out_path else None
        self.proc = subprocess.Popen(
            args, stdout=self.out or subprocess.DEVNULL, stderr=self.err)
        self.status = None

    def stderr(self):
        with open(self.err_path, errors="replace") as fh:
            return fh.read()

    def wait_listening(self, timeout=10.0):
        """True once the listen log line is out; False if it never comes
        or the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "FL-SENSOR-LISTEN" in self.stderr():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def wait_exit(self, timeout=30):
        """Waits for the end (killing it past timeout); returns the exit
        status and closes the files."""
        try:
            self.status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.status = self.proc.wait()
        self.err.close()
        if self.out is not None:
            self.out.close()
        return self.status

    def stop(self, settle=0.5):
        """Lets the socket drain, then SIGTERM; returns the exit status."""
        time.sleep(settle)
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def kill(self):
        self.proc.kill()
        return self.wait_exit()
