r"""What a user asks of a fit, turned into a design: a plain spec, or a plan awaiting its levels.

A fit names its columns in one of two ways — a *feature list* (``target=``,
``features=``, ``exclude=``, with ``categorical=``, ``reference=`` and ``absorb=``) or
a *formula* (``formula="y ~ x1 + C(region) | firm"``). :meth:`Request.design` checks
the names against the data's columns and returns

* a :class:`~streamreg.design.DesignSpec` when the fit is *plain* — one target and
  numeric features only — so plain fits read, solve and save exactly as before;
* otherwise a :class:`PendingDesign`: the coded terms, waiting for the levels of its
  categories, which a cheap pass over the category columns finds
  (:func:`streamreg.design.levels.levels_part`); :meth:`PendingDesign.resolve` then
  gives the :class:`~streamreg.design.encoded.EncodedSpec` of the main pass.

:meth:`Request.roles` says what every column of the data became
(:mod:`streamreg.design.roles`).

>>> import pyarrow as pa
>>> schema = pa.schema([("y", pa.float64()), ("x", pa.float64()), ("g", pa.string())])
>>> type(Request.of(target="y").design(schema)).__name__
'DesignSpec'
>>> pending = Request.of(formula="y ~ x + C(g)").design(schema)
>>> pending.resolve({"g": ["a", "b"]}).features
('C(g)[T.b]', 'x')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from ..errors import InputError, SchemaError, parameter
from ..io.footers import is_numeric_type
from .coding import DesignPlan, level_label
from .encoded import EncodedSpec
from .formula import parse_formula
from .levels import DEFAULT_MAX_LEVELS, check_max_levels, check_unseen
from .roles import column_roles, default_features, feature_why
from .spec import NULL_POLICIES, DesignSpec

CHANGED_HINT = (
    "the data changed after its levels were read, before the pass; fit again on data that "
    "does not change during the fit"
)


def as_names(value) -> tuple[str, ...]:
    """Column names from a list, or from a comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


@dataclass(frozen=True, eq=False)
class Request:
    """The columns a fit asks for, normalized; see the module docstring."""

    targets: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    weight: str | None = None
    fit_intercept: bool = True
    nulls: str = "drop"
    groups: str | None = None
    formula: str | None = None
    categorical: tuple[str, ...] = ()
    reference: dict = field(default_factory=dict)
    absorb: tuple[str, ...] = ()
    max_levels: int = DEFAULT_MAX_LEVELS
    partial: tuple[str, ...] = ()  # columns only some input files have: never default features

    @classmethod
    def of(
        cls,
        *,
        target=None,
        features=None,
        exclude=None,
        weight=None,
        fit_intercept: bool = True,
        nulls: str = "drop",
        groups=None,
        formula=None,
        categorical=None,
        reference=None,
        absorb=None,
        max_levels: int = DEFAULT_MAX_LEVELS,
    ) -> Request:
        """Check the options for conflicts (no data needed). ``target`` is a column name or a
        list of them (several targets); ``reference`` maps a category column to its reference
        level."""
        if nulls not in NULL_POLICIES:
            raise InputError(f"nulls must be one of {', '.join(NULL_POLICIES)}; got {nulls!r}.")
        targets = (target,) if isinstance(target, str) else as_names(target)
        reference = dict(reference or {})
        if formula is not None:
            if not isinstance(formula, str) or not formula.strip():
                raise InputError(f"{parameter('formula')} must be a formula such as 'y ~ x1 + x2'.")
            for name, value in (("features", features), ("exclude", exclude)):
                if value is not None:
                    raise InputError(
                        f"give the features either in the formula or with {parameter(name)}, "
                        "not both."
                    )
            if reference:
                raise InputError(
                    f"with a formula, write the reference level in it, e.g. "
                    f"C({next(iter(reference))}, Treatment('level')), instead of "
                    f"{parameter('reference')}."
                )
        features = None if features is None else as_names(features)
        if features is not None and not features:
            raise InputError(f"{parameter('features')} names no column.")
        return cls(
            targets=targets,
            features=features,
            exclude=as_names(exclude),
            weight=weight,
            fit_intercept=bool(fit_intercept),
            nulls=nulls,
            groups=groups,
            formula=formula,
            categorical=as_names(categorical),
            reference=reference,
            absorb=as_names(absorb),
            max_levels=check_max_levels(max_levels),
        )

    @property
    def needs_encoding(self) -> bool:
        """Whether the options alone ask for an encoded design."""
        return bool(
            self.formula
            or len(self.targets) > 1
            or self.categorical
            or self.reference
            or self.absorb
        )

    # ------------------------------------------------------------------ the design
    def design(self, schema: pa.Schema, *, partition_keys: Sequence[str] = ()):
        """A :class:`DesignSpec` (plain fits) or a :class:`PendingDesign`."""
        if self.formula is not None:
            return self._formula_design(schema)
        if not self.targets:
            raise InputError(f"a target column is required ({parameter('target')}).")
        named = None if self.features is None else [f for f in self.features]
        plain_features = named is None or all(
            f not in schema.names or is_numeric_type(schema.field(f).type) for f in named
        )
        not_default = [c for c in self.partial if c not in self.targets] if named is None else []
        if not self.needs_encoding and plain_features:
            return DesignSpec.resolve(
                schema,
                target=self.targets[0],
                features=named,
                exclude=[*self.exclude, *not_default],
                weight=self.weight,
                fit_intercept=self.fit_intercept,
                nulls=self.nulls,
                groups=self.groups,
                partition_keys=partition_keys,
            )
        self._check_names(schema)
        if named is None:
            skip = {*self.targets, self.weight, self.groups, *self.exclude, *self.absorb}
            skip |= set(not_default)
            named, _ = default_features(schema, skip=skip, partition_keys=partition_keys)
            named += [c for c in [*self.categorical, *self.reference] if c not in named]
            if not named:
                raise SchemaError(
                    f"no feature columns besides the target; columns are: "
                    f"{', '.join(schema.names)}."
                )
        else:
            named = [f for f in named if f not in self.exclude]
        plan = DesignPlan.from_features(
            schema,
            targets=self.targets,
            features=named,
            categorical=self.categorical,
            reference=self.reference,
            fit_intercept=self.fit_intercept,
            weight=self.weight,
            absorb=self.absorb,
        )
        return PendingDesign(plan, self)

    def _formula_design(self, schema: pa.Schema) -> PendingDesign:
        parsed = parse_formula(self.formula)
        if self.targets and tuple(self.targets) != tuple(parsed.targets):
            raise InputError(
                f"the formula's target {', '.join(parsed.targets)} differs from "
                f"{parameter('target', ','.join(self.targets))}; give the target once."
            )
        if self.absorb:
            if parsed.absorb:
                raise InputError(
                    f"the formula absorbs {', '.join(parsed.absorb)} and "
                    f"{parameter('absorb')} names {', '.join(self.absorb)}; give them once."
                )
            parsed = parse_formula(f"{self.formula} | {' + '.join(self.absorb)}")
        if not self.fit_intercept and parsed.intercept:
            raise InputError(
                f"the formula {self.formula!r} has an intercept; write '- 1' in it rather than "
                f"{parameter('fit_intercept', False)}."
            )
        self._check_names(schema, formula_targets=parsed.targets)
        plan = DesignPlan.from_formula(
            parsed, schema, weight=self.weight, categorical=self.categorical
        )
        return PendingDesign(plan, self)

    def _check_names(self, schema: pa.Schema, formula_targets: Sequence[str] = ()) -> None:
        names = schema.names
        targets = formula_targets or self.targets
        named = [
            *(("target", t) for t in targets if not formula_targets),
            ("weight", self.weight),
            ("cluster column", self.groups),
            *(("excluded column", e) for e in self.exclude),
            *(("feature", f) for f in self.features or ()),
            *(("categorical column", c) for c in self.categorical),
            *(("reference column", c) for c in self.reference),
            *(("absorbed column", a) for a in self.absorb),
        ]
        for label, column in named:
            if column is not None and column not in names:
                raise SchemaError(
                    f"{label} '{column}' is not in the data; columns are: {', '.join(names)}."
                )
        dupes = sorted({t for t in targets if list(targets).count(t) > 1})
        if dupes:
            raise InputError(f"target {dupes[0]!r} is listed twice.")
        features = self.features or ()
        dupes = sorted({f for f in features if features.count(f) > 1})
        if dupes:
            raise InputError(f"feature {dupes[0]!r} is listed twice in {parameter('features')}.")
        for f in features:
            if f in targets:
                raise InputError(f"column '{f}' cannot be both the target and a feature.")
            if f == self.weight:
                raise InputError(f"column '{f}' cannot be both the weight and a feature.")
        if self.weight is not None and self.weight in targets:
            raise InputError(f"column '{self.weight}' cannot be both the target and the weight.")
        if self.groups is not None and (self.groups in targets or self.groups == self.weight):
            raise InputError(
                f"column '{self.groups}' cannot be the cluster column and the target or weight."
            )

    # ------------------------------------------------------------------ roles
    def roles(self, schema: pa.Schema, spec, *, partition_keys: Sequence[str] = ()) -> dict:
        """What every column of ``schema`` is in a fit over ``spec`` (plain or encoded)."""
        if isinstance(spec, DesignSpec):
            features = {f: feature_why(schema.field(f).type) for f in spec.features}
            return column_roles(
                schema,
                targets=(spec.target,),
                features=features,
                weight=spec.weight,
                groups=spec.groups,
                exclude=self.exclude,
                named=self.features is not None,
                partition_keys=partition_keys,
                partial=self.partial,
            )
        design = spec.design
        features: dict[str, list[str]] = {}
        categories: dict[str, str] = {}
        for code, factor in design.plan.factors.items():
            if code in design.plan.targets:
                continue
            expression = factor.expression
            if factor.kind == "categorical":
                levels = design.levels[factor.source]
                reference = level_label(levels[design.references[code]])
                what = "" if expression.column else f"{factor.source}: "
                for column in expression.columns:
                    categories[column] = f"{what}{len(levels)} levels, reference {reference!r}"
                continue
            for column in expression.columns:
                how = (
                    feature_why(schema.field(column).type)
                    if expression.column and not factor.transform
                    else f"in {code}"
                )
                features.setdefault(column, []).append(how)
        return column_roles(
            schema,
            targets=design.plan.targets,
            features={c: "; ".join(dict.fromkeys(h)) for c, h in features.items()},
            categories=categories,
            weight=design.plan.weight,
            groups=spec.groups,
            absorb=design.plan.absorb,
            exclude=self.exclude,
            named=self.features is not None,
            formula=self.formula is not None,
            partition_keys=partition_keys,
            partial=self.partial,
        )


class PendingDesign:
    """A coded plan whose categories' levels are not known yet (see the module docstring)."""

    encoded = True

    def __init__(self, plan: DesignPlan, request: Request):
        self.plan = plan
        self.request = request

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the fit will read (for checking that the files agree on them)."""
        extra = (self.request.groups,) if self.request.groups else ()
        return tuple(dict.fromkeys(self.plan.columns_read + extra))

    @property
    def categorical_sources(self) -> dict:
        return self.plan.categorical_sources

    def resolve(self, levels: dict, *, unseen: str = "error", hint: str = CHANGED_HINT):
        """The :class:`EncodedSpec` of the main pass, once the levels are known."""
        return EncodedSpec(
            self.plan.with_levels(levels),
            nulls=self.request.nulls,
            groups=self.request.groups,
            unseen=check_unseen(unseen),
            hint=hint,
        )
