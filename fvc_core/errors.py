"""Errors that mean "the user can fix this": shown as one line, exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, data, command line).

    The CLI prints ``str(error)`` as one line per problem and exits with code 2,
    without a traceback. Name the file, key or plugin at fault in the message.
    """

    exit_code = 2


class ConfigError(UserError):
    """One or more problems in an experiment config, one line each."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))

    def __reduce__(self):
        # Rebuilt from its own arguments when pickled (a Ray worker, a spawned process): the default
        # passes the joined message back as ``problems``, which splits it into characters.
        return type(self), (self.problems, self.source)


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite: names fold, epoch and step. Raised by the trainer; here so
    that ``fvc sweep`` can tell a point whose values diverged without importing the trainer."""


class BadVideoError(UserError):
    """A video that cannot be read; names the file and the reason."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Ray ships a fold's error back pickled; the default (message only) raises TypeError on the
        # way back, which Ray reports as a lost worker and retries instead of this one line.
        return type(self), (self.path, self.reason)


class PluginError(UserError):
    """A plugin that is missing, ambiguous or broken; names the plugin."""


class DiskFullError(UserError):
    """No space left where fvc was writing; names the path. Nothing finished is lost: free space
    and run the same command again to resume."""

    def __init__(self, path: object):
        self.path = str(path)
        super().__init__(f"{self.path}: no space left on the device; free some space and run the same "
                         "command again to resume")

    def __reduce__(self):
        return type(self), (self.path,)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send before a kill), handled like Ctrl-C: state saved, status recorded."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library hides it (torch.save raises RuntimeError 'basic_ios::clear',
    or 'file write failed')."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    # torch raises "unexpected pos" on top of the write error that says the disk is full: walk the chain.
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if "No space left on device" in text or "basic_ios::clear" in text or "file write failed" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def one_line(exc: BaseException, limit: int | None = None, *, with_type: bool = True) -> str:
    """What one line of a warning or error says about an exception: ``Type: first line of its message``.

    ``with_type=False`` gives the first line alone (the type when the message is empty); ``limit`` cuts
    the message to that many characters, for a library that puts a whole dump in its first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        # torch.load(weights_only=True) opens with advice to load the file unsafely; its reason comes later.
        marker = "WeightsUnpickler error:"
        at = next((i for i, line in enumerate(lines) if marker in line), None)
        reason = "" if at is None else lines[at].partition(marker)[2].strip()
        if at is not None and not reason and at + 1 < len(lines):
            reason = lines[at + 1]
        lines = [f"torch.load(weights_only=True) refused it{': ' + reason if reason else ''}"]
    first = lines[0][:limit] if lines else ""
    kind = type(exc).__name__
    if not with_type:
        return first or kind
    return f"{kind}: {first}" if first else kind
