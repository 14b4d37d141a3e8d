"""The demo market's price engine: per-symbol risk parameters and the day-by-day simulation.

`draw_params` gives every symbol its market beta, sector loading, GARCH(1,1) parameters,
earnings-like jump rate and size, price level and base volume, from the sector/industry table in
`demo_names` and one latent "size" per company (big companies: higher price, more volume, calmer).

`simulate` walks the sessions once, vectorised over symbols; on day t, for symbol i in sector k:

    M_t     = mu_m + sqrt(hm_t) * e        market factor, GARCH(1,1), Student-t(5) innovations
    S_kt    = sqrt(hs_kt) * e              sector factor, GARCH(1,1)
    u_it    = sqrt(h_it) * e               idiosyncratic, GARCH(1,1) per symbol
    J_it    ~ Bernoulli(p_i) * N(0, (j_i * sqrt(h_it))^2)   jumps, mean zero
    a_it    = planted_alpha * sqrt(h_it) * (clip(z21) - REVERSAL_WEIGHT * clip(z5))
    r_it    = a_it + beta_i M_t + gamma_i S_kt + u_it + J_it          (close-to-close, log)

where z21 / z5 are cross-sectional z-scores, over symbols listed for at least 21 sessions, of the
trailing 21- and 5-session log returns up to day t-1 (clipped to +-3). The jump and a share of
the diffusive move land overnight (the open gap); the rest is intraday. Highs and lows extend
beyond max/min(open, close) by half-normal amounts scaled by the day's conditional volatility
(a Parkinson-like range of ~1.6 sigma). Log volume = base + vol regime + |standardised return| +
AR(1) noise. With planted_alpha = 0 every term is mean-zero given the past (GARCH moves only the
scale), so no symbol's expected return depends on its history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from technic_v4.data.demo_names import SECTORS

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TRADING_DAYS = 252
T_DF = 5.0  # Student-t degrees of freedom of every innovation (unit variance after scaling)
MARKET_DRIFT = 0.07 / TRADING_DAYS  # log drift of the market factor
MARKET_VOL = 0.16 / np.sqrt(TRADING_DAYS)
MOMENTUM_WINDOW, REVERSAL_WINDOW, REVERSAL_WEIGHT, Z_CLIP = 21, 5, 1.25, 3.0
OVERNIGHT_SHARE = 0.25  # share of the diffusive move that happens before the open
RANGE_SCALE = 0.5  # high/low extension beyond the body, in units of the day's sigma
PRICE_CAP, PRICE_FLOOR, PENNY_FLOOR, PENNY_CAP = 1500.0, 1.0, 0.02, 0.99
SHOCK_CLIP, VAR_CAP = 8.0, 9.0  # standardised shocks within +-8; sigma at most 3x long-run
MAX_IDIO_VOL = 1.0  # annualised, jumps included; keeps most paths within PRICE_CAP / floor


@dataclass(frozen=True)
class SymbolParams:
    sector: I64
    beta: F64
    gamma: F64  # sector-factor loading
    idio_var: F64  # unconditional daily idiosyncratic variance
    garch_a: F64
    garch_b: F64
    jump_p: F64
    jump_scale: F64
    target_price: F64  # price of the first listed bar before floor/cap adjustment
    base_volume: F64


def draw_params(rng: np.random.Generator, sector: I64, industry: I64, penny: I64,
                illiquid: I64) -> SymbolParams:
    """Per-symbol parameters; `penny` and `illiquid` are row indices given special treatment."""
    n = len(sector)
    size = rng.standard_normal(n)
    noise = rng.standard_normal((4, n))
    ind_vol = np.array([SECTORS[k].industries[j].idio_vol for k, j in zip(sector, industry,
                                                                            strict=True)])
    biotech = np.array([SECTORS[k].industries[j].name == "Biotechnology"
                        for k, j in zip(sector, industry, strict=True)])
    sector_beta = np.array([s.beta for s in SECTORS])[sector]

    annual = ind_vol * np.exp(0.30 * noise[0] - 0.15 * size)
    annual[penny] *= rng.uniform(1.5, 2.5, len(penny))
    annual = np.clip(annual, 0.08, MAX_IDIO_VOL)
    pers = rng.uniform(0.94, 0.98, n)
    garch_a = rng.uniform(0.03, 0.08, n)
    price = np.exp(np.log(35.0) + 0.45 * size + 0.85 * noise[1])
    price = np.clip(price, 2.0, 800.0)
    price[penny] = np.exp(rng.uniform(np.log(0.15), np.log(0.95), len(penny)))
    volume = np.clip(np.exp(np.log(6e5) + 0.9 * size + 0.8 * noise[2]), 5e4, 5e7)
    volume[illiquid] = np.exp(rng.uniform(np.log(3e3), np.log(4e4), len(illiquid)))
    jump_p = rng.uniform(2.0, 6.0, n) / TRADING_DAYS
    jump_scale = rng.uniform(2.0, 4.0, n) * np.where(biotech, 1.5, 1.0)
    return SymbolParams(
        sector=np.asarray(sector, dtype=np.int64),
        beta=np.clip(sector_beta + 0.25 * noise[3], 0.1, 2.5),
        gamma=np.clip(1.0 + 0.3 * rng.standard_normal(n), 0.2, 2.0),
        # `annual` is the whole idiosyncratic volatility: the jumps take their share of it.
        idio_var=annual**2 / TRADING_DAYS / (1.0 + jump_p * jump_scale**2),
        garch_a=garch_a,
        garch_b=pers - garch_a,
        jump_p=jump_p,
        jump_scale=jump_scale,
        target_price=price,
        base_volume=volume,
    )


@dataclass
class Paths:
    """Simulation output. `log_close` and `volume` are (N, T), the panel layout, so they become
    the final arrays in place (`simulate` fills them time-major and transposes once at the
    end); the float32 bar-shape arrays are time-major (T, N)."""

    log_close: F64  # relative: 0 before the first session
    volume: F64
    gap: npt.NDArray[np.float32]  # overnight log return: open_t = close_{t-1} * exp(gap_t)
    up: npt.NDArray[np.float32]  # log(high / max(open, close))
    down: npt.NDArray[np.float32]  # log(min(open, close) / low)
    log_min: F64  # per symbol, over its listed sessions
    log_max: F64


def simulate(rng: np.random.Generator, p: SymbolParams, n_sessions: int, first: I64,
             last: I64, planted_alpha: float) -> Paths:
    """Walk the sessions once (the loop is over T; every step is an N-vector operation)."""
    t_len, n = n_sessions, len(p.beta)
    n_sec = len(SECTORS)
    t_scale = np.sqrt((T_DF - 2.0) / T_DF)
    sec_vol = np.array([s.factor_vol for s in SECTORS])
    hm, hs, h = MARKET_VOL**2, sec_vol**2, p.idio_var * np.exp(0.3 * rng.standard_normal(n))
    gamma2, beta2 = p.gamma**2, p.beta**2
    sd_bar = np.sqrt(beta2 * MARKET_VOL**2 + gamma2 * sec_vol[p.sector] ** 2 + p.idio_var)
    log_base = np.log(p.base_volume)

    # Time-major while walking (each step writes and reads whole rows, not strided columns);
    # transposed to the Panel's (N, T) at the end: the same numbers, ~2x faster here.
    log_close, volume = np.empty((t_len, n)), np.empty((t_len, n))
    out = Paths(
        log_close=log_close,
        volume=volume,
        gap=np.empty((t_len, n), dtype=np.float32),
        up=np.empty((t_len, n), dtype=np.float32),
        down=np.empty((t_len, n), dtype=np.float32),
        log_min=np.full(n, np.inf),
        log_max=np.full(n, -np.inf),
    )
    prev = np.zeros(n)
    vol_ar = 0.3 * rng.standard_normal(n)
    for t in range(t_len):
        shocks = rng.standard_t(T_DF, size=n_sec + 1 + n)
        shocks *= t_scale
        np.clip(shocks, -SHOCK_CLIP, SHOCK_CLIP, out=shocks)
        z = rng.standard_normal((5, n))
        jumped = rng.random(n) < p.jump_p
        e_m = np.sqrt(hm) * shocks[0]
        e_s = np.sqrt(hs) * shocks[1 : n_sec + 1]
        sd = np.sqrt(h)
        e_i = sd * shocks[n_sec + 1 :]
        jump = np.where(jumped, p.jump_scale * sd * z[0], 0.0)
        diffusive = p.beta * (MARKET_DRIFT + e_m) + p.gamma * e_s[p.sector] + e_i
        if planted_alpha:
            diffusive += planted_alpha * sd * _planted_signal(log_close, t, first, last)
        r = diffusive + jump
        cur = prev + r
        log_close[t] = cur
        tot_sd = np.sqrt(beta2 * hm + gamma2 * hs[p.sector] + h)
        out.gap[t] = OVERNIGHT_SHARE * diffusive + jump + OVERNIGHT_SHARE * tot_sd * z[1]
        out.up[t] = RANGE_SCALE * tot_sd * np.abs(z[2])
        out.down[t] = RANGE_SCALE * tot_sd * np.abs(z[3])
        vol_ar = 0.6 * vol_ar + 0.3 * z[4]
        surprise = np.minimum(np.abs(r) / tot_sd, 6.0) - 0.8
        regime = np.log(tot_sd / sd_bar)
        volume[t] = np.exp(log_base + 0.6 * regime + 0.35 * surprise + vol_ar)
        listed = (first <= t) & (t <= last)
        np.minimum(out.log_min, np.where(listed, cur, np.inf), out=out.log_min)
        np.maximum(out.log_max, np.where(listed, cur, -np.inf), out=out.log_max)
        # GARCH(1,1) variance updates for tomorrow (jumps do not feed the idiosyncratic GARCH).
        # Variances are capped at (VAR_CAP ** 0.5) x their long-run level: fat-tailed shocks can
        # otherwise drive a GARCH path to absurd levels (its fourth moment is not finite).
        hm = min(MARKET_VOL**2 * 0.02 + 0.08 * e_m**2 + 0.90 * hm, VAR_CAP * MARKET_VOL**2)
        hs = np.minimum(sec_vol**2 * 0.02 + 0.06 * e_s**2 + 0.92 * hs, VAR_CAP * sec_vol**2)
        h = p.idio_var * (1 - p.garch_a - p.garch_b) + p.garch_a * e_i**2 + p.garch_b * h
        np.minimum(h, VAR_CAP * p.idio_var, out=h)
        prev = cur
    out.log_close = np.ascontiguousarray(log_close.T)
    out.volume = np.ascontiguousarray(volume.T)
    return out


def _planted_signal(log_close: F64, t: int, first: I64, last: I64) -> F64:
    """clip(z21) - REVERSAL_WEIGHT * clip(z5), from returns up to day t-1; 0 where not eligible.
    `log_close` is time-major here: (T, N)."""
    if t <= MOMENTUM_WINDOW:
        return np.zeros(len(first))
    now = log_close[t - 1]
    eligible = (first + MOMENTUM_WINDOW <= t - 1) & (t - 1 <= last)
    if eligible.sum() < 10:
        return np.zeros(len(first))
    z21 = _zscore(now - log_close[t - 1 - MOMENTUM_WINDOW], eligible)
    z5 = _zscore(now - log_close[t - 1 - REVERSAL_WINDOW], eligible)
    return np.where(eligible, z21 - REVERSAL_WEIGHT * z5, 0.0)


def _zscore(x: F64, mask: npt.NDArray[np.bool_]) -> F64:
    sample = x[mask]
    sd = sample.std()
    return np.clip((x - sample.mean()) / (sd if sd > 0 else 1.0), -Z_CLIP, Z_CLIP)


def assemble_ohlcv(paths: Paths, p: SymbolParams, first: I64,
                   penny: I64) -> tuple[F64, F64, F64, F64, F64]:
    """(N, T) open, high, low, close, volume, unrounded; consumes `paths` (reuses its arrays).

    Each path is shifted so its FIRST listed close is the symbol's target price, then nudged so
    that its listed history stays within [floor, cap] (PRICE_FLOOR / PRICE_CAP; PENNY_FLOOR /
    PENNY_CAP for penny names; the floor wins when a path's range is wider than that).
    Why the first close: anchoring a later bar (the last, say) makes every earlier price level
    equal target / (return still to come), so the price level (and anything in price units,
    like MACD) would forecast future returns: a look-ahead the alpha leakage test caught
    (rank IC of log price vs the next 5 sessions' return was -0.047, t -19, with no planted
    effect). The range nudge still reads the whole path, but moves only the paths that would
    leave [floor, cap].
    """
    n, t_len = paths.log_close.shape
    floor, cap = np.full(n, PRICE_FLOOR), np.full(n, PRICE_CAP)
    floor[penny], cap[penny] = PENNY_FLOOR, PENNY_CAP
    shift = np.log(p.target_price) - paths.log_close[np.arange(n), first]
    shift = np.minimum(shift, np.log(cap) - paths.log_max)
    shift = np.maximum(shift, np.log(floor) - paths.log_min)

    close = paths.log_close
    close += shift[:, None]
    opn = np.empty((n, t_len))
    opn[:, 0] = shift
    opn[:, 1:] = close[:, :-1]
    opn += paths.gap.T
    np.exp(close, out=close)
    np.exp(opn, out=opn)
    high = np.maximum(opn, close)
    high *= np.exp(paths.up.T)
    low = np.minimum(opn, close)
    low *= np.exp(-paths.down.T)
    volume = paths.volume
    np.round(volume, out=volume)
    return opn, high, low, close, volume
