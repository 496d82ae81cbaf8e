/// Random streams keyed by (seed, round, purpose): the randomness of any round and any use can be reproduced
/// on its own, without replaying what came before it. Functions here are pure functions of the key.
module Waal.Core.Rng

/// What a stream is for. Each purpose has a stable name, hashed into the stream's origin, so a purpose's
/// stream never changes when other purposes are added.
type Purpose =
    /// The initial labelled set (and a session's random initial batch).
    | InitialDraw
    /// The random strategy's batch.
    | RandomQuery
    /// k-means's initial centroids.
    | KMeansSeeds
    /// BADGE's k-means++ seeds.
    | BadgeSeeds
    /// libtorch's generator for a round's training: initialisation, dropout, the penalty's t, augmentation.
    | TorchTraining
    /// libtorch's generator for BALD's MC-dropout passes over one score batch of the unlabelled pool (batch 0
    /// keeps the name "bald" of the single stream earlier versions drew every batch from).
    | BaldDropout of batch: int
    /// WAAL's pairing of labelled and unlabelled items in one epoch.
    | EpochPairs of epoch: int
    /// The plain trainer's shuffle of the labelled set in one pass.
    | PlainShuffle of pass: int
    /// The floor budget's shuffle of the unlabelled set in one pass (WAAL's unlabelled batches).
    | UnlabelledPass of pass: int
    /// The soft-rank batch's Gumbel keys.
    | SoftRankKeys
    /// The clustered batch's k-means++ seeds.
    | ClusterSeeds
    /// The noise added to each copy of a repeated pool (`--repeat`).
    | RepeatNoise
    /// The transport and mmd queries' sample of the pool measure (`--transport-targets`).
    | TransportTargets
    /// Any other use (tests, tools), by name; a name equal to another purpose's gives that purpose's stream.
    | Named of string

    /// The stable name hashed into the stream's origin.
    member p.Name =
        match p with
        | InitialDraw -> "initial"
        | RandomQuery -> "random"
        | KMeansSeeds -> "kmeans"
        | BadgeSeeds -> "badge"
        | TorchTraining -> "torch"
        | BaldDropout 0 -> "bald"
        | BaldDropout batch -> $"bald-{batch}"
        | EpochPairs epoch -> $"pairs-{epoch}"
        | PlainShuffle pass -> $"plain-{pass}"
        | UnlabelledPass pass -> $"unlabelled-{pass}"
        | SoftRankKeys -> "soft-rank"
        | ClusterSeeds -> "cluster"
        | RepeatNoise -> "repeat-noise"
        | TransportTargets -> "transport-targets"
        | Named name -> name

/// What a stream is for, and for which round of which seeded experiment.
type Key =
    {
        Seed: int64
        Round: int
        Purpose: Purpose
    }

/// A key for the given seed, round and purpose.
let key seed round (purpose: Purpose) =
    {
        Seed = seed
        Round = round
        Purpose = purpose
    }

// SplitMix64's finaliser: a bijection on 64-bit words with good avalanche.
let private mix (z: uint64) =
    let z = (z ^^^ (z >>> 30)) * 0xbf58476d1ce4e5b9UL
    let z = (z ^^^ (z >>> 27)) * 0x94d049bb133111ebUL
    z ^^^ (z >>> 31)

// FNV-1a over the UTF-16 code units: stable across machines and runs (unlike String.GetHashCode).
let private hashPurpose (purpose: string) =
    let mutable h = 0xcbf29ce484222325UL

    for c in purpose do
        h <- (h ^^^ uint64 c) * 0x100000001b3UL

    h

/// The 64-bit origin of a key's stream; distinct keys give unrelated origins.
let origin (k: Key) =
    mix (
        mix (uint64 k.Seed)
        + 0x9e3779b97f4a7c15UL * uint64 (uint32 k.Round)
        + mix (hashPurpose k.Purpose.Name)
    )

/// A SplitMix64 generator started at a key's origin. It is mutable, so it is created, used and dropped inside
/// one function: every public function of this module returns the same result for the same key.
type Stream(k: Key) =
    let mutable state = origin k

    /// The next 64 random bits.
    member _.NextUInt64() =
        state <- state + 0x9e3779b97f4a7c15UL
        mix state

    /// A uniform integer in 0 .. bound-1 (bound >= 1), without modulo bias (Lemire's rejection).
    member this.NextBelow(bound: int) =
        if bound <= 0 then
            invalidArg (nameof bound) $"expected bound >= 1, found {bound}"

        let b = uint64 bound
        let threshold = (0UL - b) % b
        let mutable result = -1

        while result < 0 do
            let r = this.NextUInt64()
            let product = System.UInt128.op_Implicit r * System.UInt128.op_Implicit b
            let low = uint64 product

            if low >= threshold then
                result <- int (uint64 (product >>> 64))

        result

    /// A uniform double in [0, 1) with 53 random bits.
    member this.NextDouble() =
        float (this.NextUInt64() >>> 11) * (1.0 / 9007199254740992.0)

/// `count` uniform doubles in [0, 1).
let uniform (k: Key) (count: int) =
    let s = Stream k
    Array.init count (fun _ -> s.NextDouble())

/// Standard normal values one at a time from the key's stream (Box-Muller, two values per pair of uniforms;
/// 1 - u keeps the log finite), for draws too many to hold at once. Each call of the result gives the next value.
let gaussians (k: Key) =
    let s = Stream k
    let spare = ref nan

    fun () ->
        if not (System.Double.IsNaN spare.Value) then
            let v = spare.Value
            spare.Value <- nan
            v
        else
            let r = sqrt (-2.0 * log (1.0 - s.NextDouble()))
            let t = 2.0 * System.Math.PI * s.NextDouble()
            spare.Value <- r * sin t
            r * cos t

/// `count` independent standard normal values (the first `count` of `gaussians`).
let gaussian (k: Key) (count: int) =
    let next = gaussians k
    Array.init count (fun _ -> next ())

/// A uniformly random permutation of 0 .. n-1 (Fisher-Yates).
let permutation (k: Key) (n: int) =
    let s = Stream k
    let a = Array.init n id

    for i in n - 1 .. -1 .. 1 do
        let j = s.NextBelow(i + 1)
        let t = a[i]
        a[i] <- a[j]
        a[j] <- t

    a

/// `count` distinct items of `items`, uniformly, without replacement, in the order drawn
/// (all of them, shuffled, when count >= the number of items).
let sample (k: Key) (count: int) (items: int[]) =
    let s = Stream k
    let a = Array.copy items
    let take = max 0 (min count a.Length)

    for i in 0 .. take - 1 do
        let j = i + s.NextBelow(a.Length - i)
        let t = a[i]
        a[i] <- a[j]
        a[j] <- t

    a[.. take - 1]

/// A non-negative 63-bit seed for a library with its own generator (libtorch's manual_seed).
let seedFor (k: Key) = int64 (origin k >>> 1)
