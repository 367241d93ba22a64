"""One line under each figure of a report: what to look for in it.

Keyed by ``<analysis>_<figure>``; a figure without an entry here (a plugin's) gets the first
sentence of its plot function's docstring.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

CAPTIONS = {
    "modes_shares": "Each blue bar against its grey one: a digit below its red tick is missed, "
    "one far above its grey bar is over-produced.",
    "modes_confidence": "Red mass left of the dashed line: samples the classifier cannot name. "
    "A healthy generator is nearly all blue, close to 1.",
    "modes_by_digit": "Does each row look like the digit on its left, and vary along the row? "
    "Near-identical samples in a row mean mode collapse.",
    "modes_unrecognizable": "What the generator makes that is no digit: noise, blobs, "
    "half-formed strokes.",
    "memorization_pairs_closest": "The closest pairs of the run: a top image identical to the "
    "one below it is a copy; a distance far below the others deserves a look.",
    "memorization_pairs_random": "Random samples over their nearest training digit: a shared "
    "style is expected, identical strokes are not.",
    "memorization_distances": "Blue left of grey: samples sit closer to training digits than "
    "new digits do. Blue mass left of the red line is copies.",
    "memorization_copy_rate_by_digit": "A blue bar far above its grey one: that digit is copied "
    "more often than new digits of the same kind fall that close.",
    "dscores_histograms": "Green right of purple: D scores its training digits higher than new "
    "ones (memorization). Red near 0: D spots generated digits easily.",
    "distribution_prdc": "Precision low: many samples are unlike any real digit; recall low: "
    "many real digits have no generated look-alike.",
    "distribution_feature_pca": "Regions with only real or only generated points: digit styles "
    "the generator misses or invents.",
    "interpolation_strips": "Each row walks between two latents; the label over each frame "
    "(? = unrecognizable) should change once, not flicker or pass through ?.",
    "interpolation_steps": "Flat lines mean even motion; circled steps are jumps, where the "
    "image changes abruptly between neighbouring frames.",
    "interpolation_extremes": "The smoothest and the jumpiest walks: the jumpiest show where "
    "the latent space tears.",
    "interpolation_anchors": "A walk through the chosen digits: each should morph into the next "
    "without passing through other digits or noise.",
    "interpolation_d_path": "A dip in the middle: D finds the in-between images less real than "
    "the endpoints.",
    "latent_map_umap_mnist_cnn": "Generated digits over the real ones, by classifier features: "
    "generated points far from every real cluster are not digits.",
    "latent_map_umap_pixel": "The same in pixel space: generated points should fall on the "
    "real clusters, not between them.",
    "latent_map_latent": "Latents coloured by the digit they become: regions of one colour mean "
    "a structured latent space; a salt-and-pepper mix means digits jump under small moves.",
    "latent_map_latent_slice": "A plane through latent space: neighbouring images should be "
    "similar; an abrupt change marks a tear.",
    "privacy_roc": "Curves above the diagonal at the far left (low false-positive rates): an "
    "attacker can pick out training members from the generated samples.",
    "privacy_exposed_members": "The members the attack is surest about, over their nearest "
    "generated sample: near-identical pairs are leaked training digits.",
    "conditional_confusion": "A bright diagonal: the label sets the digit. Mass off the diagonal "
    "or in the ? column: labels the generator ignores or draws as no digit.",
    "conditional_class_grid": "Each row should show its label's digit; each column keeps one "
    "latent, so style should stay constant down a column.",
    "training_curves": "D(train) pulling away from D(test): D memorizes. D(G(z)) near 0: G "
    "fails to fool D. Losses should stay bounded.",
    "training_sample_grids": "The same latents through training: digits should sharpen and stay "
    "varied.",
}


def caption(result: Any, name: str) -> str:
    """What to look for in figure ``name`` of ``result``."""
    key = f"{result.name}_{name}"
    if key in CAPTIONS:
        return CAPTIONS[key]
    spec = result.figures.get(name)
    fn = spec.func if isinstance(spec, partial) else spec
    doc = inspect.getdoc(fn) if callable(fn) and not hasattr(fn, "savefig") else None
    return doc.split("\n\n")[0].replace("\n", " ").split(". ")[0].rstrip(".") + "." if doc else ""
