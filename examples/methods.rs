//! Methods: `method` keys on the instance's state, `ignore(self)` shares results across instances, associated
//! functions and `self` by value work too.
//!
//! Run with `cargo run --example methods` (twice, to see the entries persist).

use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket};
use serde::Serialize;

static CACHE: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/example-caches/methods")).expect("cache directory")
});

#[derive(Serialize)]
struct Forecast {
    city: String,
    /// Not part of the state that matters: skipped by serde, so not in the key.
    #[serde(skip)]
    requests: std::cell::Cell<u32>,
}

impl Forecast {
    fn new(city: &str) -> Self {
        Forecast {
            city: city.to_string(),
            requests: Default::default(),
        }
    }

    /// Keyed by `self.city` and `day`.
    #[bucket_cache(method, bucket = CACHE, lifetime = "30m")]
    fn temperature(&self, day: u32) -> f64 {
        self.requests.set(self.requests.get() + 1);
        println!("  computing {} day {day}", self.city);
        15.0 + f64::from(day % 7) + self.city.len() as f64 / 10.0
    }

    /// Keyed by `celsius` alone: the conversion does not depend on the city.
    #[bucket_cache(ignore(self), bucket = CACHE)]
    fn to_fahrenheit(&self, celsius: i32) -> i32 {
        println!("  converting {celsius}");
        celsius * 9 / 5 + 32
    }

    /// An associated function: keyed by its arguments and `Self`'s type name.
    #[bucket_cache(bucket = CACHE)]
    fn known_cities(prefix: String) -> Vec<String> {
        println!("  listing cities starting with {prefix:?}");
        ["Paris", "Prague", "Porto", "Oslo"]
            .iter()
            .filter(|c| c.starts_with(&prefix))
            .map(|c| c.to_string())
            .collect()
    }
}

fn main() {
    let paris = Forecast::new("Paris");
    let oslo = Forecast::new("Oslo");
    for _ in 0..2 {
        println!("Paris day 3: {}", paris.temperature(3));
        println!("Oslo day 3: {}", oslo.temperature(3));
        println!("20 C = {} F (via Paris)", paris.to_fahrenheit(20));
        println!("20 C = {} F (via Oslo, same entry)", oslo.to_fahrenheit(20));
        println!("cities with P: {:?}", Forecast::known_cities("P".into()));
    }
    println!(
        "bodies run this time: Paris {}, Oslo {}",
        paris.requests.get(),
        oslo.requests.get()
    );
}
