"""Why this rating (technic_v4/scan/explain.py, scoring.explain_scores): the explanation is the
scan's own numbers. For every symbol of a scan, the weights, sub-scores and risk factor shown
reproduce the scan's TechRating to 1e-9 and its Signal; the alpha contributions plus the bias
equal the scan's forecast to 1e-6; the rules listed agree with the inputs they show
(Hypothesis: mirrored inputs mirror every rule)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_support import demo_store, tiny_models

from technic_v4 import scoring
from technic_v4.alpha.inference import MODEL_FEATURES, ModelSet
from technic_v4.alpha.registry import shipped_models_dir
from technic_v4.data.reader import StoreReader
from technic_v4.data.universe import InvalidSymbolError
from technic_v4.errors import ConfigError, UnknownSymbolError
from technic_v4.scan.explain import explain
from technic_v4.scanner_core import ScanConfig, run_scan

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    return demo_store(root / "data"), tiny_models(root / "models")


@pytest.fixture(scope="module")
def reader(dirs):
    return StoreReader(dirs[0])


@pytest.fixture(scope="module")
def models(dirs):
    return ModelSet(dirs[1])


def _rating_from_parts(rating: dict) -> float:
    """TechRating from what the explanation shows: weights, sub-scores, risk factor."""
    subs = rating["sub_scores"]
    weighted = sum(s["weight"] * s["score"] for s in subs)
    assert math.isclose(weighted, rating["weighted_sum"], rel_tol=0, abs_tol=1e-12)
    assert rating["weight_total"] == sum(s["weight"] for s in subs)
    return 100.0 * weighted / rating["weight_total"] * rating["risk_factor"]["value"]


def _check_alpha(alpha: dict, row: dict | None = None) -> None:
    for model in alpha["models"]:
        assert model["available"], model
        total = math.fsum(c["contribution"] for c in model["contributions"]) + model["bias"]
        assert abs(total - model["forecast"]) <= 1e-6, (model["id"], total, model["forecast"])
        assert abs(model["sum"] - model["forecast"]) <= 1e-6
        names = [c["feature"] for c in model["contributions"]]
        assert names == list(MODEL_FEATURES[:len(names)])  # the model's order
        if row is not None:  # the scan's forecast, to float32 rounding
            assert abs(model["forecast"] - row[model["column"]]) <= 1e-7, model["id"]


@pytest.mark.slow
@pytest.mark.parametrize("as_of", [None, AS_OF])
def test_every_symbol_of_a_scan_is_explained_by_its_parts(reader, models, dirs, as_of):
    frame, status = run_scan(ScanConfig(as_of_date=as_of), loader=reader, models_dir=dirs[1])
    assert status.kept == len(frame) > 400 and status.alpha["available"]
    rows_ = frame.to_dict("records")
    for row in rows_ if as_of is None else rows_[::5]:  # every symbol, then a sample
        e = explain(reader, models, row["Symbol"], as_of)
        rating = e["tech_rating"]
        assert e["meta"]["as_of"] == status.as_of and e["scan"]["kept"]
        assert e["meta"]["data_version"] == status.data_version
        assert abs(rating["value"] - row["TechRating"]) <= 1e-9
        assert abs(_rating_from_parts(rating) - row["TechRating"]) <= 1e-9, row["Symbol"]
        assert rating["signal"]["value"] == row["Signal"]
        for sub in rating["sub_scores"]:
            assert sub["weighted"] == sub["weight"] * sub["score"]
            assert math.isclose(sub["score"], _combined(sub), abs_tol=1e-15)
        assert e["close"] == row["Close"]
        _check_alpha(e["alpha"], row)


def _combined(sub: dict) -> float:
    points = [r["points"] for r in sub["rules"]]
    if sub["combine"] == "mean":
        return sum(points) / len(points)
    return float(np.prod(points))


def test_contributions_of_deep_models_sum_to_the_forecast(reader):
    """The shipped models (hundreds of deeper trees) over every symbol of the store at once:
    contributions + bias = the scan's forecast to 1e-6 for each row."""
    shipped = ModelSet(shipped_models_dir())
    assert shipped.state()["available"], shipped.state()["reason"]  # models/ ships them
    frame, _ = run_scan(ScanConfig(), loader=reader, models_dir=shipped_models_dir())
    features = {k: frame[k].to_numpy(dtype=float) for k in MODEL_FEATURES}
    split, state = shipped.contributions(features)
    for h, c in split.items():
        assert c is not None and c.values.shape == (len(frame), len(c.features))
        total = c.values.astype(np.float64).sum(axis=1) + c.bias
        np.testing.assert_allclose(total, c.forecast, rtol=0, atol=1e-6)
        np.testing.assert_allclose(c.forecast, frame[f"Alpha{h}d"], rtol=0, atol=1e-7)
        assert np.abs(c.values).max() > 0


def test_rejected_and_young_symbols_say_why(reader, models, dirs):
    frame, status = run_scan(ScanConfig(as_of_date=AS_OF), loader=reader, models_dir=dirs[1])
    rej = status.rejections
    for reason in ("stale", "not listed yet"):
        hit = rej[rej["reason"] == reason]
        if not len(hit):
            continue
        e = explain(reader, models, hit["Symbol"].iloc[0], AS_OF)
        assert not e["scan"]["kept"] and e["scan"]["reason"] == reason
        assert e["scan"]["detail"] == hit["detail"].iloc[0]
    young = frame[frame["Incomplete"].str.contains("SMA200")]
    assert len(young), "the demo store has recent listings"
    e = explain(reader, models, young["Symbol"].iloc[0], AS_OF)
    assert "SMA200" in e["incomplete"]
    trend = e["tech_rating"]["sub_scores"][0]
    assert trend["inputs"]["SMA200"] != trend["inputs"]["SMA200"]  # NaN: missing
    assert trend["rules"][1]["text"] == "SMA200 missing (too few bars): 0"
    assert abs(_rating_from_parts(e["tech_rating"]) - young["TechRating"].iloc[0]) <= 1e-9


def test_alpha_unavailable_says_why(reader, tmp_path):
    e = explain(reader, ModelSet(tmp_path), _first_symbol(reader))
    alpha = e["alpha"]
    assert not alpha["available"] and "not found" in alpha["reason"]
    assert [m["available"] for m in alpha["models"]] == [False, False]
    assert all(str(tmp_path) in m["reason"] for m in alpha["models"])
    assert e["meta"]["models_version"] == "alpha_5d:none,alpha_10d:none"
    assert isinstance(e["tech_rating"]["value"], float)


def _first_symbol(reader) -> str:
    return str(reader.snapshot().universe["symbol"].iloc[0])


def test_bad_requests(reader, models):
    sym = _first_symbol(reader)
    with pytest.raises(UnknownSymbolError, match="ZZZZZ"):
        explain(reader, models, "ZZZZZ")
    with pytest.raises(InvalidSymbolError):
        explain(reader, models, "../etc")
    with pytest.raises(ConfigError, match="before the store's first session"):
        explain(reader, models, sym, "1990-01-01")
    with pytest.raises(ConfigError, match="not a date"):
        explain(reader, models, sym, "yesterday")
    assert explain(reader, models, sym.lower())["symbol"] == sym
    # a date after the last session, or on a weekend, means the last session on or before it
    last = explain(reader, models, sym)
    assert explain(reader, models, sym, "2099-01-01")["tech_rating"] == last["tech_rating"]


# -- the rules agree with the inputs they show -----------------------------------------------
finite = st.floats(-1e3, 1e3, allow_nan=False)


@st.composite
def rows(draw):
    """A row of scoring inputs (some missing) and its mirror image (every input flipped)."""
    c = draw(st.floats(1.0, 1000.0))
    maybe = lambda x: draw(st.sampled_from([x, x, x, np.nan]))  # noqa: E731
    row = {
        "Close": c,
        "SMA20": maybe(c * (1 + draw(st.floats(-0.2, 0.2)))),
        "SMA50": maybe(c * (1 + draw(st.sampled_from([0.0, draw(st.floats(-0.2, 0.2))])))),
        "SMA200": maybe(c * (1 + draw(st.floats(-0.3, 0.3)))),
        "RSI": maybe(draw(st.sampled_from([30.0, 35.0, 45.0, 55.0, 65.0, 70.0,
                                           draw(st.floats(0, 100))]))),
        "MACD_hist": maybe(draw(finite)),
        "high_20": c + draw(st.floats(0.0, 0.3)) * c,
        "low_20": c - draw(st.floats(0.0, 0.3)) * c,
        "Volume_ratio": maybe(draw(st.sampled_from([0.7, 1.2, 1.5, draw(st.floats(0, 5))]))),
        "mom_5": maybe(draw(st.floats(-0.5, 0.5))),
        "ATR_pct": maybe(draw(st.floats(0, 0.2))),
    }
    mirror = dict(row)
    for k in ("SMA20", "SMA50", "SMA200"):
        mirror[k] = 2 * c - row[k]
    mirror["RSI"] = 100 - row["RSI"]
    mirror["MACD_hist"] = -row["MACD_hist"]
    mirror["high_20"], mirror["low_20"] = 2 * c - row["low_20"], 2 * c - row["high_20"]
    mirror["mom_5"] = -row["mom_5"]
    return row, mirror


def _arrays(*rows_: dict) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows_], dtype=float) for k in rows_[0]}


OPS = {1.0: " > ", -1.0: " < ", 0.0: " = "}


@settings(max_examples=300, deadline=None)
@given(rows())
def test_rules_agree_with_their_inputs_and_mirror(pair):
    row, mirror = pair
    e, m = scoring.explain_scores(_arrays(row, mirror))
    rating, subs = scoring.tech_rating(_arrays(row))
    assert e["value"] == rating[0] and -100 <= e["value"] <= 100
    assert abs(_rating_from_parts(e) - e["value"]) <= 1e-9
    by_name = {s["name"]: s for s in e["sub_scores"]}
    assert {k: v["score"] for k, v in by_name.items()} == {k: v[0] for k, v in subs.items()}
    for sub in e["sub_scores"]:
        assert sub["score"] == pytest.approx(_combined(sub), abs=1e-15)
        for rule in sub["rules"]:
            assert set(rule["inputs"]) <= set(sub["inputs"])
            shown = rule["text"].rsplit(": ", 1)[1]  # every text ends with ": <points>"
            assert float(shown) == pytest.approx(rule["points"], abs=5e-5), rule
            if any(v != v for v in rule["inputs"].values()):
                if rule["points"] == 0 and rule["condition"] != "breakout":
                    assert "missing" in rule["text"], rule
                continue
            left, *right = rule["inputs"].values()
            if rule["condition"] in ("SMA20 vs SMA50", "SMA50 vs SMA200", "Close vs SMA50"):
                assert rule["points"] == np.sign(left - right[0])
                assert OPS[rule["points"]] in rule["text"]
            elif rule["condition"] in ("MACD histogram", "direction of the 5-bar move",
                                       "direction of the trend"):
                assert rule["points"] == np.sign(left)
                assert OPS[rule["points"]] in rule["text"]
            elif rule["condition"] == "RSI band":
                expected = (1.0 if left >= 65 else 0.5 if left >= 55 else -1.0 if left <= 35
                            else -0.5 if left <= 45 else 0.0)
                assert rule["points"] == expected
            elif rule["condition"] == "RSI extremes":
                assert rule["points"] == (-1.0 if left > 70 else 1.0 if left < 30 else 0.0)
            elif rule["condition"] == "ATR_pct band":
                assert rule["points"] == (1.0 if left < 0.01 else -1.0 if left > 0.03 else 0.0)
            elif rule["condition"] == "Volume_ratio band":
                assert rule["points"] == (1.0 if left >= 1.5 else 0.5 if left >= 1.2 else
                                          -0.5 if left <= 0.7 else 0.0)
    # the mirror image: every directional rule flips; the bands of size do not
    for sub, sub_m in zip(e["sub_scores"], m["sub_scores"], strict=True):
        assert sub_m["score"] == pytest.approx(-sub["score"], abs=1e-8), sub["name"]
    trend, trend_m = by_name["trend"], m["sub_scores"][0]
    assert [r["points"] for r in trend_m["rules"]] == [-r["points"] for r in trend["rules"]]
    assert m["signal"]["value"] == {"Strong Long": "Strong Short", "Long": "Short",
                                    "Avoid": "Avoid", "Short": "Long",
                                    "Strong Short": "Strong Long"}[e["signal"]["value"]]


@settings(max_examples=200, deadline=None)
@given(rows())
def test_flipping_every_trend_input_flips_the_trend(pair):
    """Negate SMA20, SMA50, SMA200 and Close (the trend reads only their differences): every
    trend rule and the trend sub-score change sign, and the rule texts swap > and <."""
    row, _ = pair
    flipped = {k: -v if k in ("Close", "SMA20", "SMA50", "SMA200") else v
               for k, v in row.items()}
    e, f = scoring.explain_scores(_arrays(row, flipped))
    trend, trend_f = e["sub_scores"][0], f["sub_scores"][0]
    assert trend_f["score"] == -trend["score"]
    for rule, rule_f in zip(trend["rules"], trend_f["rules"], strict=True):
        assert rule_f["points"] == -rule["points"]
        if rule["points"]:
            assert OPS[-rule["points"]] in rule_f["text"] and OPS[rule["points"]] in rule["text"]


# ---------------------------------------------------------------- one set of facts
# the result columns an explanation names, and how its text spells two of them
NAMED = ("Close", "SMA20", "SMA50", "SMA200", "RSI", "MACD_hist", "high_20", "low_20",
         "dist_high_20", "dist_low_20", "Volume_ratio", "mom_5", "ATR_pct", "TechRating")
SPELLED = {"close": "Close"}
NUMBER = r"([+-]?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?)(%?)"
# the only numbers printed without a column name before them: rule thresholds, as a percentage
THRESHOLDS = {f"{x:.0%}" for x in (scoring.CALM_ATR, scoring.WILD_ATR, 0.02)}


def _printed_tolerance(text: str, percent: bool) -> float:
    """Half a unit of the last digit printed (the value's rounding), in the column's unit."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    tol = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    return tol / 100 if percent else tol


def _printed_numbers(out: str) -> list[tuple[str, float, float]]:
    """(column, printed value, rounding tolerance) for every "NAME number" in `out`."""
    import re

    names = "|".join(sorted({*NAMED, *SPELLED}, key=len, reverse=True))
    found = []
    for m in re.finditer(rf"(?<![\w.])({names}) {NUMBER}", out):
        name, text, pct = SPELLED.get(m[1], m[1]), m[2].replace(",", ""), m[3] == "%"
        found.append((name, float(text) / (100 if pct else 1), _printed_tolerance(text, pct)))
    return found


def _unnamed_percentages(out: str) -> list[str]:
    """Percentages printed without a column name before them, other than rule thresholds."""
    import re

    names = "|".join({*NAMED, *SPELLED})
    return [m[0] for m in re.finditer(rf"(?<![\w.]){NUMBER}", out) if m[2] == "%"
            and m[0].lstrip("+-") not in THRESHOLDS
            and not re.search(rf"(?:{names}) $", out[:m.start()])]


# numbers a rule may print without a column name: its thresholds, bar counts and formula
RULE_CONSTANTS = {f"{x:g}" for x in (*scoring.RSI_BANDS, *scoring.VOLUME_BANDS,
                                     scoring.OVERSOLD, scoring.OVERBOUGHT, 0, 1, 2, 20)}


def _unnamed_rule_numbers(rule: dict) -> list[str]:
    """Numbers in a rule's text that are neither named by a column, nor a threshold or bar
    count, nor the points the rule gave."""
    import re

    names = "|".join(sorted({*NAMED, *SPELLED, "trend"}, key=len, reverse=True))  # + sub-score
    text = re.sub(rf"(?<![\w.])(?:{names}) {NUMBER}", "", rule["text"])
    text = re.sub(r"(?:SMA|mom_|high_|low_)\d+|\d+-bar", "", text)  # names and "20-bar"
    points = {f"{rule['points']:+.4f}", f"{rule['points']:+g}", f"{rule['points']:g}"}
    return [m[0] for m in re.finditer(rf"(?<![\w.]){NUMBER}", text)
            if m[0].lstrip("+-") not in RULE_CONSTANTS | THRESHOLDS and m[0] not in points]


def test_every_number_explain_prints_equals_its_column(reader, models, dirs):
    """The `technic explain` table names each number by its result column; each equals the
    scan's column to the digits printed (dist_high_20 is Close / high_20 - 1 in both), no
    percentage is printed unnamed (other than a rule's threshold), and no zero as -0.0000."""
    import re
    from io import StringIO

    from rich.console import Console

    from technic_v4.cli.explain import print_explain

    frame, _ = run_scan(ScanConfig(as_of_date=AS_OF, columns=list(NAMED)), loader=reader,
                        models_dir=dirs[1])
    checked = 0
    for row in frame.to_dict("records")[::15]:
        buf = StringIO()
        print_explain(explain(reader, models, row["Symbol"], AS_OF),
                      Console(file=buf, width=400, color_system=None))
        out = buf.getvalue()
        numbers = _printed_numbers(out)
        named = {n for n, _, _ in numbers}
        assert named >= {"Close", "RSI", "TechRating"} and named & {"dist_high_20", "dist_low_20"}
        for name, value, tol in numbers:
            want = float(row[name])
            assert abs(value - want) <= tol * (1 + 1e-9), (row["Symbol"], name, value, want)
        assert not _unnamed_percentages(out), (row["Symbol"], _unnamed_percentages(out))
        for sub in explain(reader, models, row["Symbol"], AS_OF)["tech_rating"]["sub_scores"]:
            for rule in sub["rules"]:
                assert not _unnamed_rule_numbers(rule), (rule["text"], row["Symbol"])
        assert not re.search(r"-0\.0000(?!\d)|= -0\.00(?!\d)", out)  # a zero with a sign
        checked += 1
    assert checked >= 20
