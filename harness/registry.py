"""One tiny registry shared by tasks, model families, techniques, runtimes and meters.

Adding a task, a model, a compression technique, a runtime or an energy meter is one
file dropped into its package, registered by name (``@REGISTRY.register("name")``, the
name written there only); the package finds its files (``discover``), and tests loop
over ``names()`` so a new entry is tested without writing a new test (the timm
pattern); see docs/extending.md. Each registry declares what its entries
must be (``check``: a subclass of its base class, or a callable).

**Plugins.** A separately installed package adds entries through ``importlib.metadata``
entry points, as pytest takes its plugins: the group is the registry's (``GROUPS``:
``joulebench.techniques``, ``joulebench.runtimes``, ``joulebench.tasks``,
``joulebench.models``, ``joulebench.meters``), the entry's name the registry name, its
object the entry (a Technique subclass, a task loader, ...). Plugins load once, lazily:
when a registry is first asked for a name it does not hold, or for all its names. One
that fails to import is kept as a one-line reason naming its distribution; every other
name still works, and asking for the broken one gives that line.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from harness.errors import UserError

T = TypeVar("T")


#: The entry-point group of each registry kind.
GROUPS = {"technique": "joulebench.techniques", "runtime": "joulebench.runtimes", "task": "joulebench.tasks",
          "model family": "joulebench.models", "meter": "joulebench.meters"}
#: Names that a known plugin provides, for the message when it is not installed.
KNOWN_PLUGINS = {("technique", "random_prune"): "joulebench-random-prune (pip install benchmarks/examples/plugin)"}


@dataclass(frozen=True)
class Plugin:
    """One entry point seen in a group: where it came from and whether it loaded."""

    kind: str
    name: str
    value: str  # module:attribute, as the distribution declares it
    distribution: str  # "name version", or "?" when the entry point names none
    error: str | None = None  # why it did not load (one line)


def subclass_of(base: type) -> Callable[[Any], str | None]:
    """An entry check: the entry is a concrete subclass of ``base``."""
    def check(obj: Any) -> str | None:
        if not (inspect.isclass(obj) and issubclass(obj, base)):
            return f"is {type(obj).__name__} {obj!r:.60}, not a subclass of {base.__module__}.{base.__name__}"
        if inspect.isabstract(obj):
            return f"is {obj.__name__}, which leaves abstract methods of {base.__name__} undefined"
        return None
    return check


def callable_entry(obj: Any) -> str | None:
    """An entry check: the entry is a function (or other callable) that builds the thing."""
    return None if callable(obj) else f"is {type(obj).__name__} {obj!r:.60}, not a callable"


class Registry(Generic[T]):
    def __init__(self, kind: str, check: Callable[[Any], str | None] = callable_entry) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.group = GROUPS.get(kind)
        self._plugins: dict[str, Plugin] | None = None  # None: not looked for yet
        #: What a plugin's entry must be (a Technique subclass, a callable, ...): checked
        #: when it loads, so a wrong one is its own one line, not a traceback mid-run.
        self.check = check

    def plugins(self) -> list[Plugin]:
        """Every entry point of this registry's group, loaded (once) or with its error."""
        if self._plugins is None:
            self._plugins = {}
            for ep in entry_points(group=self.group) if self.group else ():
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
                error = None
                if ep.name in self._entries:
                    error = f"{self.kind} {ep.name!r} is built in; the plugin's entry is ignored"
                else:
                    before = dict(self._entries)
                    try:
                        obj = ep.load()
                    except (Exception, SystemExit) as exc:  # foreign code: its failure, even sys.exit, is one line
                        self._entries = before  # nothing half-registered stays
                        error = f"failed to import ({type(exc).__name__}: {_first(exc)})"
                    else:
                        entry = self._entries.get(ep.name, obj)  # it may have registered itself on import
                        wrong = self.check(entry)
                        if wrong:
                            self._entries = before
                            error = f"gives an entry that {wrong}"
                        else:
                            self._entries[ep.name] = _named(entry, ep.name)
                self._plugins[ep.name] = Plugin(self.kind, ep.name, ep.value, dist, error)
        return list(self._plugins.values())

    def origin(self, name: str) -> str | None:
        """The distribution (name and version) a plugin entry came from; None if built in."""
        self.plugins()
        p = (self._plugins or {}).get(name)
        return p.distribution if p is not None and p.error is None else None

    def register(self, name: str) -> Callable[[T], T]:
        """``@REGISTRY.register("name")`` over a class or a function: the name is written
        here only; a class that declares a ``name`` attribute gets this one."""
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = _named(entry, name)
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            self.plugins()
        try:
            return self._entries[name]
        except KeyError:
            pass
        broken = (self._plugins or {}).get(name)
        if broken is not None and broken.error:
            raise UserError(f"{self.kind} {name!r} comes from the plugin {broken.distribution} ({broken.value}), "
                            f"which {broken.error}; fix or reinstall that package") from None
        known = ", ".join(sorted(self._entries)) or "none"
        hint = KNOWN_PLUGINS.get((self.kind, name))
        raise UserError(f"unknown {self.kind} {name!r}; " + (f"it is provided by {hint}, which is not installed"
                                                             if hint else f"use one of: {known}")) from None

    def names(self) -> list[str]:
        self.plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _named(entry: T, name: str) -> T:
    """A class that declares a ``name`` attribute gets its registry name (written once)."""
    if inspect.isclass(entry) and any("name" in vars(c) for c in entry.__mro__):
        entry.name = name  # type: ignore[attr-defined]
    return entry


def discover(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of ``package`` (its ``__path__``) but the private ones (``_x``)
    and ``base``: each registers its entries as it is imported, so a new entry is one file
    dropped into the package, with no import list to keep. Returns the modules imported."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_") and m.name != "base")
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


#: How every option model reads a suite's values: unknown keys, a wrong type (no silent
#: coercion of "2" to 2 or of true to 1), NaN and infinity are each an error.
OPTION_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)


def between(lo: float, hi: float, kind: type = float, open_low: bool = False, open_high: bool = False) -> Any:
    """A type with a range, for an option's annotation: ``hidden: Width = 64`` with
    ``Width = between(1, 65536, int)``."""
    low = {"gt": lo} if open_low else {"ge": lo}
    high = {"lt": hi} if open_high else {"le": hi}
    return Annotated[kind, Field(**low, **high)]


def options_model(fn: Callable[..., Any], skip: int = 0) -> type[BaseModel]:
    """The options ``fn`` takes, as a pydantic model built from its signature.

    Registry entries declare their options as keyword parameters, so the signature is the
    schema: each parameter's annotation is its type, and ``Annotated[int, Field(ge=1,
    le=4096)]`` its range, declared once beside the code that uses it. ``skip``
    positional parameters (the data the step receives) are not options."""
    fields: dict[str, Any] = {}
    target = fn.func if isinstance(fn, functools.partial) else fn  # a preset: the function, with new defaults
    hints = get_type_hints(target.__init__ if inspect.isclass(target) else target, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())[skip:]
    for p in params:
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        fields[p.name] = (hints.get(p.name, Any), ... if p.default is p.empty else p.default)
    return create_model(f"{getattr(fn, '__name__', 'options')}_options", __config__=OPTION_CONFIG, **fields)


def validate(model: type[BaseModel], options: Mapping[str, Any], where: str) -> BaseModel:
    """``options`` checked against ``model``: the values, or one line naming the first
    bad option, what was wrong and what it accepts."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        raise UserError(describe(exc, model, where)) from None


def _path(loc: tuple) -> str:
    """An error's location as the suite spells it: ``channels.1``, without pydantic's
    union and validator tags (``constrained-str``, ``function-after[...]``)."""
    return ".".join(str(x) for x in loc if isinstance(x, int) or not any(c in str(x) for c in "-[(")) or "options"


def describe(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = _path(err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields)) or "none"
        return f"unknown option {loc!r} in {where}; allowed: {allowed}"
    if err["type"] == "missing":
        return f"option {loc!r} is required in {where}"
    if err["type"] == "value_error":  # a validator's own sentence names the value already
        return f"option {loc!r} in {where}: {str(err['ctx']['error'])}"
    # a union's alternatives fail one by one at the same place: say all of them
    msgs = list(dict.fromkeys(e["msg"] for e in errors if _path(e["loc"]) == loc))
    msg = " or ".join(m[0].lower() + m[1:] for m in msgs)
    value = err.get("input")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"option {loc!r} in {where} is {shown}: {msg}"


def check_options(fn: Callable[..., Any], options: Mapping[str, Any], where: str,
                  skip: int = 0) -> None:
    """Reject, before any work starts, an option ``fn`` does not take or a value outside
    the type and range its signature declares (a typo or a dropout of 2.0 fails at load
    time, not after an hour of training)."""
    validate(options_model(fn, skip), options, where)
