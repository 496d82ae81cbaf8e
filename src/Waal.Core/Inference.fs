/// Paired comparisons over seeds: Student's t distribution (CDF and quantiles), the exact sign-flip test, and
/// Holm's step-down correction for several comparisons. What `waal report --compare` computes.
[<RequireQualifiedAccess>]
module Waal.Core.Inference

open System

// ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits).
let private lnGamma (x: float) =
    let c =
        [|
            0.99999999999980993
            676.5203681218851
            -1259.1392167224028
            771.32342877765313
            -176.61502916214059
            12.507343278686905
            -0.13857109526572012
            9.9843695780195716e-6
            1.5056327351493116e-7
        |]

    let x = x - 1.0
    let mutable a = c[0]
    let t = x + 7.5

    for i in 1..8 do
        a <- a + c[i] / (x + float i)

    0.5 * log (2.0 * Math.PI) + (x + 0.5) * log t - t + log a

// The continued fraction of the regularised incomplete beta (modified Lentz).
let private betaFraction (a: float) (b: float) (x: float) =
    let tiny = 1e-300
    let mutable c = 1.0
    let mutable d = 1.0 - (a + b) * x / (a + 1.0)
    d <- if abs d < tiny then 1.0 / tiny else 1.0 / d
    let mutable h = d
    let mutable m = 1
    let mutable fin = false

    while not fin && m < 300 do
        let m2 = float (2 * m)
        let aa = float m * (b - float m) * x / ((a + m2 - 1.0) * (a + m2))
        d <- 1.0 + aa * d
        d <- if abs d < tiny then 1.0 / tiny else 1.0 / d
        c <- 1.0 + aa / c
        c <- if abs c < tiny then tiny else c
        h <- h * d * c
        let aa = -(a + float m) * (a + b + float m) * x / ((a + m2) * (a + m2 + 1.0))
        d <- 1.0 + aa * d
        d <- if abs d < tiny then 1.0 / tiny else 1.0 / d
        c <- 1.0 + aa / c
        c <- if abs c < tiny then tiny else c
        let step = d * c
        h <- h * step
        fin <- abs (step - 1.0) < 1e-15
        m <- m + 1

    h

/// The regularised incomplete beta function I_x(a, b).
let incompleteBeta (a: float) (b: float) (x: float) =
    if x <= 0.0 then
        0.0
    elif x >= 1.0 then
        1.0
    else
        let front =
            exp (lnGamma (a + b) - lnGamma a - lnGamma b + a * log x + b * log (1.0 - x))

        if x < (a + 1.0) / (a + b + 2.0) then
            front * betaFraction a b x / a
        else
            1.0 - front * betaFraction b a (1.0 - x) / b

/// P(T <= t) for Student's t with df degrees of freedom.
let tCdf (df: int) (t: float) =
    if df < 1 then
        invalidArg (nameof df) $"expected df >= 1, found {df}"

    let v = float df
    let tail = 0.5 * incompleteBeta (v / 2.0) 0.5 (v / (v + t * t))
    if t >= 0.0 then 1.0 - tail else tail

/// The q-quantile of Student's t with df degrees of freedom (bisection on the CDF, to 1e-12).
let tQuantile (df: int) (q: float) =
    if q <= 0.0 || q >= 1.0 then
        invalidArg (nameof q) $"expected a probability in (0, 1), found {q}"

    let mutable lo = -1e3
    let mutable hi = 1e3

    for _ in 1..200 do
        let mid = 0.5 * (lo + hi)
        if tCdf df mid < q then lo <- mid else hi <- mid

    0.5 * (lo + hi)

/// Which way a comparison is tested: two-sided (is there a difference?), or one-sided that the mean difference
/// exceeds `Margin` (0: superiority; a negative margin: non-inferiority).
type Sides =
    | TwoSided
    | Above of margin: float

/// A paired comparison's statistics over the per-seed differences.
type Paired =
    {
        N: int
        Mean: float
        /// The standard error of the mean difference (sd / sqrt n).
        StandardError: float
        /// Student's t p-value (two-sided, or one-sided against the margin).
        TP: float
        /// The exact sign-flip p-value over all 2^n sign assignments of the differences (less the margin), the
        /// same sides as TP.
        SignFlipP: float
    }

/// The exact sign-flip (permutation) p-value of the mean of `d` under the symmetric null, over all 2^n flips:
/// two-sided counts |mean| at least the observed, one-sided the mean at least the observed. n <= 20.
let signFlip (sides: Sides) (d: float[]) =
    let n = d.Length

    if n = 0 || n > 20 then
        invalidArg (nameof d) $"expected 1..20 differences, found {n}"

    let shift =
        match sides with
        | TwoSided -> 0.0
        | Above m -> m

    let x = d |> Array.map (fun v -> v - shift)
    let observed = Array.sum x
    let eps = 1e-12 * (1.0 + (x |> Array.sumBy abs))
    let mutable count = 0

    for mask in 0 .. (1 <<< n) - 1 do
        let mutable s = 0.0

        for i in 0 .. n - 1 do
            s <- s + (if mask &&& (1 <<< i) <> 0 then -x[i] else x[i])

        let extreme =
            match sides with
            | TwoSided -> abs s >= abs observed - eps
            | Above _ -> s >= observed - eps

        if extreme then
            count <- count + 1

    float count / float (1 <<< n)

/// The statistics of paired differences (n >= 2).
let paired (sides: Sides) (d: float[]) =
    let n = d.Length

    if n < 2 then
        invalidArg (nameof d) $"expected at least 2 differences, found {n}"

    let mean = Array.average d
    let sd = sqrt ((d |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (n - 1))
    let se = sd / sqrt (float n)

    let tp =
        match sides with
        | TwoSided when se = 0.0 -> if mean = 0.0 then 1.0 else 0.0
        | TwoSided -> 2.0 * (1.0 - tCdf (n - 1) (abs mean / se))
        | Above m when se = 0.0 -> if mean > m then 0.0 else 1.0
        | Above m -> 1.0 - tCdf (n - 1) ((mean - m) / se)

    {
        N = n
        Mean = mean
        StandardError = se
        TP = tp
        SignFlipP = signFlip sides d
    }

/// The t-interval of the mean difference at confidence `level` (two-sided: both ends; one-sided: the lower end
/// and +infinity).
let interval (sides: Sides) (level: float) (p: Paired) =
    match sides with
    | TwoSided ->
        let h = tQuantile (p.N - 1) (1.0 - (1.0 - level) / 2.0) * p.StandardError
        p.Mean - h, p.Mean + h
    | Above _ -> p.Mean - tQuantile (p.N - 1) level * p.StandardError, Double.PositiveInfinity

/// Holm's step-down correction: each p-value's adjusted value (max over the ones before it in ascending order of
/// (m - rank) p, capped at 1), and the family-wise level each is tested at (alpha / (m - rank)), in the input order.
let holm (alpha: float) (ps: float[]) =
    let m = ps.Length
    let order = Array.init m id |> Array.sortBy (fun i -> ps[i], i)
    let adjusted = Array.zeroCreate m
    let levels = Array.zeroCreate m
    let mutable running = 0.0

    for rank in 0 .. m - 1 do
        let i = order[rank]
        running <- max running (min 1.0 (float (m - rank) * ps[i]))
        adjusted[i] <- running
        levels[i] <- alpha / float (m - rank)

    adjusted, levels
