/// The Wasserstein-1 distance between empirical 1-D distributions: the transport cost WAAL's critic estimates.
module Waal.Core.Wasserstein

open System

/// W1 between the uniform empirical distributions of two non-empty samples (sizes may differ):
/// the integral of |F_p(x) - F_q(x)| over x, computed exactly by merging the sorted samples.
let w1 (p: float[]) (q: float[]) =
    if p.Length = 0 || q.Length = 0 then
        invalidArg (if p.Length = 0 then nameof p else nameof q) "W1 needs two non-empty samples"

    if
        Array.exists (Double.IsFinite >> not) p
        || Array.exists (Double.IsFinite >> not) q
    then
        invalidArg (nameof p) "W1 needs finite samples"

    let a = Array.sort p
    let b = Array.sort q
    let wa = 1.0 / float a.Length
    let wb = 1.0 / float b.Length
    let mutable i = 0
    let mutable j = 0
    let mutable fa = 0.0
    let mutable fb = 0.0
    let mutable x = min a[0] b[0]
    let mutable total = 0.0

    while i < a.Length || j < b.Length do
        let next =
            if j >= b.Length || (i < a.Length && a[i] <= b[j]) then
                a[i]
            else
                b[j]

        total <- total + abs (fa - fb) * (next - x)
        x <- next

        while i < a.Length && a[i] = next do
            fa <- fa + wa
            i <- i + 1

        while j < b.Length && b[j] = next do
            fb <- fb + wb
            j <- j + 1

    total

/// W1 between two weighted 1-D measures (weights non-negative, each summing to the same total): the integral of
/// |F_p(x) - F_q(x)| over x, exact from the merged sorted atoms.
let w1Weighted (p: float[]) (wp: float[]) (q: float[]) (wq: float[]) =
    if p.Length <> wp.Length || q.Length <> wq.Length then
        invalidArg (nameof wp) "W1 needs one weight per atom"

    let atoms =
        Array.append (Array.map2 (fun x w -> x, w) p wp) (Array.map2 (fun x w -> x, -w) q wq)
        |> Array.sortBy fst

    let mutable total = 0.0
    let mutable cdf = 0.0

    for i in 0 .. atoms.Length - 2 do
        cdf <- cdf + snd atoms[i]
        total <- total + abs cdf * (fst atoms[i + 1] - fst atoms[i])

    total
