//! Prices and the cost of a call, in integers: prices are held as picodollars per token (exact for
//! any price with up to six decimals per million tokens), and a call's cost is rounded once to
//! microdollars, so totals are plain integer sums with no float drift.

use crate::chat::Usage;
use crate::config::PriceConfig;

/// Picodollars per token. `usd_per_mtok * 1e6` is exact for prices given to six decimals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

fn pico_per_token(usd_per_million_tokens: f64) -> u64 {
    (usd_per_million_tokens * 1_000_000.0).round() as u64
}

impl Price {
    pub fn from_config(price: &PriceConfig) -> Price {
        let input = pico_per_token(price.input);
        Price {
            input,
            output: pico_per_token(price.output),
            cache_read: price.cached_input.map_or(input, pico_per_token),
            cache_write: price.cache_write.map_or(input, pico_per_token),
        }
    }

    /// The cost of `usage` in microdollars, rounded half up. Cached tokens are part of
    /// `prompt_tokens` and are charged at their own rate instead of the input rate.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let cached = usage.cache_read_tokens.saturating_add(usage.cache_write_tokens);
        let uncached = usage.prompt_tokens.saturating_sub(cached);
        let pico = u128::from(uncached) * u128::from(self.input)
            + u128::from(usage.cache_read_tokens) * u128::from(self.cache_read)
            + u128::from(usage.cache_write_tokens) * u128::from(self.cache_write)
            + u128::from(usage.completion_tokens) * u128::from(self.output);
        ((pico + 500_000) / 1_000_000).min(u128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_integers() {
        let price = Price::from_config(&PriceConfig {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
        });
        assert_eq!(price, Price { input: 3_000_000, output: 15_000_000, cache_read: 300_000, cache_write: 3_750_000 });
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 200,
            cache_read_tokens: 400,
            cache_write_tokens: 100,
            reasoning_tokens: 0,
        };
        // 500 x $3 + 400 x $0.30 + 100 x $3.75 + 200 x $15, per million tokens = $0.004995.
        assert_eq!(price.cost_micros(&usage), 4995);
        let tiny =
            Price::from_config(&PriceConfig { input: 0.0375, output: 0.15, cached_input: None, cache_write: None });
        let one = Usage { prompt_tokens: 7, completion_tokens: 3, ..Usage::default() };
        // 7 x 0.0375 + 3 x 0.15 = 0.7125 microdollars, rounded once.
        assert_eq!(tiny.cost_micros(&one), 1);
    }
}
