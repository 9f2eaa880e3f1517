"""Formulas: patsy's term algebra and coding give statsmodels' column names, and bad
formulas are refused in one sentence."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import statsmodels.formula.api as smf

from streamreg.design.coding import Design, DesignPlan
from streamreg.design.expressions import normalize_code, parse_expression
from streamreg.design.formula import parse_formula
from streamreg.errors import InputError, ModelFormatError, SchemaError

NAMED_FORMULAS = [
    "y ~ x + z",
    "y ~ C(g):C(h)",
    "y ~ C(g)*C(h)",
    "y ~ x:g + g",
    "y ~ g:x",
    "y ~ b + C(k) + x:C(k) - 1",
    "y ~ I(x**-1) + np.power(x, 2) + I(x/ 2.5) + np.log( x+1 )",
    "y ~ (x + z + g)**2",
    "y ~ x*z*g",
    "y ~ g/x",
    "y ~ g:h:x + x",
    "y ~ x + center(x) + center(x):z + scale(z)",
    "y ~ g:h + h:g:x + C(k):g - 1",
    'y ~ C(g, Treatment("c")) * x',
    "y ~ C(g, Treatment(reference = 'b')) + x",
    "y ~ x:z:g:h + g",
    "y ~ h*g*k + C(k)",
    "y ~ 0 + g + x",
    "y ~ x - 1 + 1 + np.exp(z / 10) + np.sqrt(x)",
    'y ~ Q("x") + np.log(Q("z") ** 2)',
]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(5)
    n = 90
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(1, 2, n),
            "z": rng.normal(size=n),
            "g": rng.choice(list("abc"), n).astype(object),
            "h": rng.choice(list("pq"), n).astype(object),
            "b": rng.choice([True, False], n),
            "k": rng.integers(1, 4, n),
        }
    )


def _design(formula, frame):
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    plan = DesignPlan.from_formula(parse_formula(formula), schema)
    levels = {
        "g": sorted(set(frame.g)),
        "h": sorted(set(frame.h)),
        "b": [False, True],
        "k": sorted(set(frame.k.tolist())),
    }
    return plan, plan.with_levels({s: levels[s] for s in plan.categorical_sources})


@pytest.mark.parametrize("formula", NAMED_FORMULAS)
def test_column_names_and_order_equal_statsmodels(formula, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several of these designs are deliberately singular
        expected = list(smf.ols(formula, frame).fit().params.index)
    plan, design = _design(formula, frame)
    assert (["Intercept"] if plan.intercept else []) + list(design.column_names) == expected


def test_term_algebra():
    f = parse_formula("y1 + y2 ~ a*b + c:b:a - 1 | firm")
    assert f.targets == ("y1", "y2")
    assert [t.factors for t in f.terms] == [("a",), ("b",), ("a", "b"), ("c", "b", "a")]
    assert f.intercept is False and f.absorb == ("firm",)
    assert [t.name for t in parse_formula("y ~ a/b").terms] == ["a", "a:b"]
    assert [t.name for t in parse_formula("y ~ b:a + a:b").terms] == ["b:a"]
    assert parse_formula("y ~ x + 0 + 1").intercept is True
    assert parse_formula("y ~ 0 + x").intercept is False
    spec = parse_formula('np.log(y) ~ C(g, Treatment("b")) + center(x)').factors
    assert spec['C(g, Treatment("b"))'].reference == "b"
    assert spec["center(x)"].transform == "center"
    assert "np.log(y)" in spec


def test_normalized_names():
    assert normalize_code("I(x**-1)") == "I(x ** -1)"
    assert normalize_code('C( g ,Treatment( "b"))') == 'C(g, Treatment("b"))'
    assert normalize_code("f(a = 1, b=- 2)") == "f(a=1, b=-2)"
    assert parse_expression("np.log( value+1 )").columns == ("value",)


BAD_FORMULAS = [
    ("y ~ 1", "only an intercept"),
    ("y ~ 0", "no terms"),
    ("y", "separated by '~'"),
    ("y ~ x %in% z", "operator"),
    ("y ~ x + 2", "constant 2"),
    ("y ~ x | a | b", "3 parts"),
    ("y ~ x | log(f)", "not a column name"),
    ("y ~ C(g, Sum)", "Treatment coding only"),
    ("y ~ (x + 1):z", "cannot interact"),
    ("y ~ x ** z", "positive whole number"),
    ("y ~ y + x", "both a target and a term"),
    ("y ~ x +", "does not parse"),
    ("C(g) ~ x", "cannot be targets"),
    ("y ~ C(log(x))", "not an expression"),
    ("y ~ foo(x)", "'foo', which is not a function"),
    ("y ~ os.system(x)", "'os.system', which is not a function"),
    ("y ~ log(center(x))", "only as a whole term"),
    ("y ~ I(x if z else 1)", "does not evaluate"),
    ("y ~ I(x[0])", "does not evaluate"),
    ("y ~ log(x, 2)", "with 2 arguments"),
    ("y ~ bs(x, df=4)", "knots or bins come from the whole data set"),
    ("y ~ poly(x, 2)", "knots or bins come from the whole data set"),
]


@pytest.mark.parametrize(("formula", "phrase"), BAD_FORMULAS)
def test_bad_formulas_are_refused_in_one_sentence(formula, phrase):
    with pytest.raises(InputError) as err:
        parse_formula(formula)
    message = str(err.value)
    assert phrase in message
    assert message.endswith(".") and "\n" not in message


BAD_AGAINST_DATA = [
    ("y ~ x + nope", SchemaError, "'nope', which is not in the data"),
    ("y ~ log(g)", SchemaError, "holds text"),
    ("y ~ month(x)", SchemaError, "expected a date or timestamp"),
    ("g ~ x", SchemaError, "must be numeric"),
    ("y ~ x | nope", SchemaError, "fixed effect 'nope'"),
]


@pytest.mark.parametrize(("formula", "error", "phrase"), BAD_AGAINST_DATA)
def test_formulas_checked_against_the_columns(formula, error, phrase, frame):
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    with pytest.raises(error) as err:
        DesignPlan.from_formula(parse_formula(formula), schema)
    assert phrase in str(err.value)


def test_reference_must_be_a_level(frame):
    plan, _ = _design("y ~ g + x", frame)
    bad = DesignPlan.from_formula(parse_formula("y ~ C(g, Treatment('zz'))"), plan_schema(frame))
    with pytest.raises(InputError, match="reference level 'zz'.*levels are: a, b, c"):
        bad.with_levels({"g": ["a", "b", "c"]})


def test_center_refused_with_weights(frame):
    schema = pa.Schema.from_pandas(frame.assign(w=1.0), preserve_index=False)
    with pytest.raises(InputError, match="unweighted statistics"):
        DesignPlan.from_formula(parse_formula("y ~ center(x)"), schema, weight="w")


def plan_schema(frame):
    return pa.Schema.from_pandas(frame, preserve_index=False)


def test_feature_list_without_formula(frame):
    schema = plan_schema(frame)
    plan = DesignPlan.from_features(
        schema, targets="y", features=["x", "g", "b", "k"], categorical=["k"], reference={"g": "c"}
    )
    design = plan.with_levels({"g": ["a", "b", "c"], "k": [1, 2, 3]})
    # A boolean feature is its 0/1 column (= treatment coding with reference False), named as
    # the column, unless it is marked categorical.
    assert design.column_names == ("x", "g[T.a]", "g[T.b]", "b", "k[T.2]", "k[T.3]")
    marked = DesignPlan.from_features(schema, targets="y", features=["b"], categorical=["b"])
    assert marked.with_levels({"b": [False, True]}).column_names == ("b[T.True]",)
    no_intercept = DesignPlan.from_features(
        schema, targets="y", features=["x", "g"], fit_intercept=False
    )
    assert no_intercept.with_levels({"g": ["a", "b", "c"]}).column_names == (
        "x",
        "g[a]",
        "g[b]",
        "g[c]",
    )
    with pytest.raises(InputError, match="marked categorical but is not among the features"):
        DesignPlan.from_features(schema, targets="y", features=["x"], categorical=["g"])


def test_design_json_round_trip(frame):
    import json

    _, design = _design('y ~ C(g, Treatment("c")) * x + b + np.log(x) + C(k):h', frame)
    data = json.loads(json.dumps(design.to_dict()))
    again = Design.from_dict(data)
    assert again.column_names == design.column_names
    assert again.levels == design.levels and again.references == design.references
    data["columns"][0] = "tampered"
    with pytest.raises(ModelFormatError, match="do not match"):
        Design.from_dict(data)
    with pytest.raises(ModelFormatError, match="not a streamreg design"):
        Design.from_dict({"format": "something else"})


def test_implicit_intercept(frame):
    assert _design("y ~ g + x - 1", frame)[1].implicit_intercept
    assert not _design("y ~ g + x", frame)[1].implicit_intercept
    assert not _design("y ~ g:x - 1", frame)[1].implicit_intercept
