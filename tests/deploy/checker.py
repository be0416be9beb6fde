"""The pass/fail bookkeeping the deploy checkers share: count checks, collect failures, report."""


class Checker:
    def __init__(self):
        self.errors = []
        self.checks = 0

    def check(self, cond, message):
        """Records one check; `message` is the failure's description. Returns `cond`."""
        self.checks += 1
        if not cond:
            self.errors.append(message)
        return cond

    def fail(self, message):
        """Records a failed check."""
        self.check(False, message)

    def report(self):
        """Prints every failure and the totals; returns the process exit code."""
        for e in self.errors:
            print(f"FAIL: {e}")
        print(f"{self.checks - len(self.errors)} passed, {len(self.errors)} failed")
        return 1 if self.errors else 0
