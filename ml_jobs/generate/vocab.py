"""Words the synthetic shop is made of: categories, brands, product nouns, search terms, reviews.

Everything here is a constant. Keeping the vocabulary in one place means the test suite and the
downstream sentiment and search features can check against the same lists the generator used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategorySpec:
    """One product category: how its items are named, priced and how its demand moves in a year."""

    name: str
    log_price: float  # mean of log(base_price) for items in the category
    peak_day_of_year: int  # yearly seasonality peaks here (1..365)
    yearly_amplitude: float  # ±share of demand the yearly cycle moves
    weekend_lift: float  # Saturday/Sunday multiplier before normalisation
    brands: tuple[str, ...]
    nouns: tuple[str, ...]


# fmt: off
CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "outdoor", 4.1, 190, 0.30, 1.25,
        ("Northpeak", "Trailfox", "Summitline", "Ridgeway"),
        ("tent", "backpack", "headlamp", "sleeping bag", "camp stove", "water filter"),
    ),
    CategorySpec(
        "kitchen", 3.4, 330, 0.15, 1.10,
        ("Copperleaf", "Brightpan", "Mealcraft", "Oakhouse"),
        ("skillet", "chef knife", "cutting board", "blender", "kettle", "mixing bowl"),
    ),
    CategorySpec(
        "electronics", 4.6, 335, 0.25, 1.05,
        ("Voltix", "Lumenco", "Sonara", "Pixelwave"),
        ("headphones", "speaker", "charger", "smartwatch", "webcam", "power bank"),
    ),
    CategorySpec(
        "beauty", 3.0, 45, 0.10, 0.95,
        ("Glowra", "Petalique", "Purebloom", "Velvetine"),
        ("face serum", "moisturizer", "lip balm", "shampoo", "hand cream", "sunscreen"),
    ),
    CategorySpec(
        "toys", 3.2, 350, 0.35, 1.30,
        ("Playnest", "Tinkerly", "Brickbox", "Wondertot"),
        ("puzzle", "building set", "plush bear", "board game", "toy car", "kite"),
    ),
    CategorySpec(
        "books", 2.7, 320, 0.12, 1.20,
        ("Inkwell", "Pagefold", "Lanternhouse", "Quillstone"),
        ("novel", "cookbook", "travel guide", "notebook", "atlas", "comic"),
    ),
    CategorySpec(
        "fashion", 3.7, 100, 0.15, 1.25,
        ("Threadline", "Mavenwear", "Cobaltcoat", "Loomfield"),
        ("rain jacket", "sneakers", "scarf", "wool hat", "belt", "tote bag"),
    ),
    CategorySpec(
        "home decor", 3.6, 300, 0.12, 1.15,
        ("Hearthly", "Nookhaus", "Linenly", "Candora"),
        ("candle", "throw pillow", "picture frame", "vase", "wall clock", "rug"),
    ),
    CategorySpec(
        "garden", 3.3, 130, 0.40, 1.35,
        ("Greenroot", "Sproutwell", "Fernbrook", "Tillmate"),
        ("watering can", "pruning shears", "planter", "seed kit", "garden hose", "gloves"),
    ),
    CategorySpec(
        "sports", 3.8, 20, 0.18, 1.20,
        ("Strideon", "Flexcore", "Pacebolt", "Courtline"),
        ("yoga mat", "dumbbell", "running belt", "jump rope", "tennis racket", "foam roller"),
    ),
    CategorySpec(
        "pets", 3.1, 200, 0.08, 1.05,
        ("Pawsome", "Tailwag", "Furnest", "Whiskerly"),
        ("dog leash", "cat tree", "pet bed", "chew toy", "food bowl", "litter mat"),
    ),
    CategorySpec(
        "grocery", 2.3, 350, 0.10, 1.15,
        ("Harvestly", "Goldengrain", "Brewmoor", "Orchardia"),
        ("coffee beans", "olive oil", "green tea", "honey", "granola", "dark chocolate"),
    ),
)

# Title adjectives: "Northpeak Ultralight tent".
TITLE_ADJECTIVES: tuple[str, ...] = (
    "Classic", "Ultralight", "Pro", "Compact", "Deluxe", "Everyday", "Premium", "Mini",
    "Max", "Eco", "Smart", "Original", "Heritage", "Essential", "Studio", "Travel",
)

# Things shoppers search for that the catalogue does not carry: unmet demand.
# (term, growth over the whole period in log units: 0 = flat, > 0 = trending up)
UNMET_TERMS: tuple[tuple[str, float], ...] = (
    ("paddle board", 1.6),
    ("air fryer", 1.2),
    ("pickleball paddle", 2.0),
    ("standing desk", 0.0),
    ("robot vacuum", 0.0),
    ("heated vest", 0.4),
    ("sourdough starter", -0.5),
    ("e-bike", 0.8),
)

# Review text follows the rating: openers and verdicts per sentiment, item noun in between.
POSITIVE_WORDS: tuple[str, ...] = (
    "love", "great", "excellent", "perfect", "recommend", "amazing", "fantastic", "happy",
)
NEGATIVE_WORDS: tuple[str, ...] = (
    "disappointed", "broke", "poor", "terrible", "waste", "return", "awful", "cheap",
)

REVIEW_POSITIVE_OPENERS: tuple[str, ...] = (
    "Love this {noun}!",
    "Excellent {noun}.",
    "Great {noun}, exactly as described.",
    "Perfect {noun} for the price.",
    "Amazing quality {noun}.",
)
REVIEW_POSITIVE_VERDICTS: tuple[str, ...] = (
    "Would recommend to anyone.",
    "Really happy with it.",
    "Fantastic value, buying another.",
    "Works great every day.",
)
REVIEW_NEUTRAL_OPENERS: tuple[str, ...] = (
    "The {noun} is okay.",
    "Average {noun}.",
    "Decent {noun}, nothing special.",
    "This {noun} does the job.",
)
REVIEW_NEUTRAL_VERDICTS: tuple[str, ...] = (
    "Fine for now.",
    "Shipping was slow but it works.",
    "About what I expected.",
)
REVIEW_NEGATIVE_OPENERS: tuple[str, ...] = (
    "Disappointed with this {noun}.",
    "Terrible {noun}.",
    "The {noun} broke after a week.",
    "Poor quality {noun}.",
    "Awful {noun}, feels cheap.",
)
REVIEW_NEGATIVE_VERDICTS: tuple[str, ...] = (
    "Total waste of money.",
    "Going to return it.",
    "Would not buy again, poor build.",
    "Very disappointed.",
)

# Share of a day's activity in each UTC hour (night trough, lunch bump, evening peak).
HOURLY_PROFILE: tuple[float, ...] = (
    0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.60, 0.90, 1.00, 1.10, 1.20,
    1.30, 1.20, 1.10, 1.10, 1.20, 1.40, 1.60, 1.80, 1.90, 1.70, 1.20, 0.60,
)
# fmt: on
