"""What the exporter can build, one registry per kind of component: config name -> builder.

A builder registers itself with a decorator, naming the config value that selects it and,
optionally, a ``check`` of the other settings it reads::

    @BACKBONES.register("build_resnet_fpn_backbone", check=fpn_problems, size_divisibility=32)
    def build_resnet_fpn_backbone(g, w, image, cfg): ...

:func:`~export_tools.modeling.supported.check_supported` accepts exactly the registered names
(and runs their checks); the graph builders look their components up here. A new builder
module must be imported by its package (``backbone/__init__.py``, ...) so that its decorator
runs before anything is looked up. Extra keyword arguments are kept in :attr:`Entry.attrs`
(``size_divisibility`` of a backbone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from export_tools.config import Config, ConfigError
from export_tools.modeling.checks import Check, Problem, one_of

B = TypeVar("B", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[B]):
    """One registered component: its config name, builder, check and attributes."""

    name: str
    build: B
    check: Check | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[B]):
    """Builders of one kind, selected by the config value at ``key``."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        self._entries: dict[str, Entry[B]] = {}

    def register(self, name: str, *, check: Check | None = None,
                 **attrs: Any) -> Callable[[B], B]:
        """Decorator: register the decorated builder under ``name`` (once per name)."""

        def decorate(build: B) -> B:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, build, check, dict(attrs))
            return build

        return decorate

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's or a plugin's temporary builder)."""
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def entry(self, name: str, source: str | None = None) -> Entry[B]:
        """The entry registered as ``name``.

        Raises:
            ConfigError: naming :attr:`key` (and the config file ``source``), when nothing is
                registered under ``name``.
        """
        if name not in self:
            listed = ", ".join(repr(n) for n in self._entries)
            raise ConfigError(f"unsupported {self.kind} {name!r}; supported: {listed}",
                              key=self.key, file=source)
        return self._entries[name]

    def lookup(self, cfg: Config) -> Entry[B]:
        """The entry ``cfg`` selects (its value at :attr:`key`)."""
        return self.entry(cfg.get(self.key), cfg.source)

    def name_problems(self, cfg: Config, also: tuple[str, ...] = ()) -> Iterator[Problem]:
        """A problem when ``cfg`` names something not registered (nor in ``also``)."""
        yield from one_of(cfg, self.key, (*self.names(), *also))

    def problems(self, cfg: Config, also: tuple[str, ...] = ()) -> Iterator[Problem]:
        """The name's problem, else those of the selected entry's check (names in ``also``
        are accepted unchecked)."""
        name_problems = list(self.name_problems(cfg, also))
        yield from name_problems
        name = cfg.get(self.key)
        if not name_problems and name in self:
            check = self._entries[name].check
            if check is not None:
                yield from check(cfg)


META_ARCHS: Registry[Any] = Registry("meta-architecture", "MODEL.META_ARCHITECTURE")
BACKBONES: Registry[Any] = Registry("backbone", "MODEL.BACKBONE.NAME")
PROPOSAL_GENERATORS: Registry[Any] = Registry("proposal generator",
                                              "MODEL.PROPOSAL_GENERATOR.NAME")
RPN_HEADS: Registry[Any] = Registry("RPN head", "MODEL.RPN.HEAD_NAME")
ROI_HEADS: Registry[Any] = Registry("ROI heads", "MODEL.ROI_HEADS.NAME")
ROI_BOX_HEADS: Registry[Any] = Registry("box head", "MODEL.ROI_BOX_HEAD.NAME")
ROI_MASK_HEADS: Registry[Any] = Registry("mask head", "MODEL.ROI_MASK_HEAD.NAME")
ROI_KEYPOINT_HEADS: Registry[Any] = Registry("keypoint head", "MODEL.ROI_KEYPOINT_HEAD.NAME")
SEM_SEG_HEADS: Registry[Any] = Registry("semantic segmentation head", "MODEL.SEM_SEG_HEAD.NAME")

#: every registry, for listings and the test that ties them to check_supported
REGISTRIES = (META_ARCHS, BACKBONES, PROPOSAL_GENERATORS, RPN_HEADS, ROI_HEADS, ROI_BOX_HEADS,
              ROI_MASK_HEADS, ROI_KEYPOINT_HEADS, SEM_SEG_HEADS)
