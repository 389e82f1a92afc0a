//! Hashing helpers shared by the stages: a 64-bit finalizer and a small seeded generator. (Text
//! and shingle hashes are xxh3, from `xxhash-rust`.)

/// A strong 64-bit finalizer (from SplitMix64 / MurmurHash3's fmix).
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: a small, well-mixed generator for deriving per-permutation constants from a seed.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

#[cfg(test)]
mod tests {
    use super::{mix64, splitmix64};

    #[test]
    fn the_finalizer_is_a_bijection_on_samples_and_the_generator_moves() {
        let inputs: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9))
            .collect();
        let mut outputs: Vec<u64> = inputs.iter().map(|&x| mix64(x)).collect();
        outputs.sort_unstable();
        outputs.dedup();
        assert_eq!(outputs.len(), inputs.len());
        let mut state = 1;
        let (a, b) = (splitmix64(&mut state), splitmix64(&mut state));
        assert_ne!(a, b);
        // The known first output of SplitMix64 seeded with 0.
        assert_eq!(splitmix64(&mut 0), 0xe220_a839_7b1d_cdaf);
    }
}
