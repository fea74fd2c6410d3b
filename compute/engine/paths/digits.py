"""The path "From a single neuron to a classifier of digits" (the 8×8 digits dataset)."""

from __future__ import annotations

from .checks import (
    Canvas,
    Item,
    Unmet,
    first,
    need,
    require,
    shape_text,
    shaped,
)
from .documents import Sketch
from .steps import Path, step_maker

PIXELS = 64  # an 8×8 image, one value per pixel
CLASSES = 10
HIDDEN = 32
ACTIVATIONS = ("ReLU", "GELU", "SiLU", "Tanh", "Sigmoid")


def pixels(c: Canvas) -> Item:
    inputs = c.of_type("Input", top=True)
    require(bool(inputs), "There is no Input yet: add an Input block, where the 64 pixel "
            "values of a digit enter.")
    found = inputs[0]
    require(found.written("dtype", "float32") != "int64",
            f"The Input '{found.path}' reads whole-number ids, but pixels are measured "
            "values: set its dtype to float32.", found)
    require("shape" in found.raw, f"The Input '{found.path}' has no shape yet: set its "
            f"shape to [{PIXELS}], the pixel values of one digit.", found)
    c.fixed(found)
    shape = found.param("shape")
    require(list(shape) == [PIXELS],
            f"The Input '{found.path}' takes {list(shape)}, but an 8×8 digit is {PIXELS} pixel "
            f"values in a row: set its shape to [{PIXELS}].", found)
    return found


def neuron(c: Canvas) -> Item:
    x = pixels(c)
    found = need(first(c.of_type("Linear"), lambda n: c.source(n) is x),
                 f"No neuron yet: add a Linear block fed by the Input '{x.path}' "
                 "(out_features 1 for one neuron) and wire it into an Output.")
    shaped(c, found)
    require(any(c.feeds_into(found, o) for o in c.of_type("Output", top=True)),
            f"The Linear '{found.path}' leads to no Output yet: wire it into an Output.",
            found)
    return found


def output(c: Canvas) -> tuple[Item, Item | None]:
    """The Output after the first neuron, and the node that feeds it."""
    first_layer = neuron(c)
    out = need(first(c.of_type("Output", top=True), lambda o: c.feeds_into(first_layer, o)),
               f"The Linear '{first_layer.path}' leads to no Output yet: wire it into an "
               "Output.", first_layer)
    return out, c.source(out)


def ten_scores(c: Canvas) -> None:
    out, last = output(c)
    shape = out.in_shape()
    if shape is None or list(shape) != ["B", CLASSES]:
        fix = (f"set the Linear '{last.path}' out_features to {CLASSES}"
               if last is not None and last.type == "Linear"
               else f"end the model with a Linear of {CLASSES} outputs")
        raise Unmet(f"The Output '{out.path}' receives {shape_text(shape)}, but a digit needs "
                    f"{CLASSES} scores, one per class: {fix}.", out.path)


def _layers(c: Canvas, out: Item) -> list[Item]:
    """The Linears and activations from the Output back to the Input, last first."""
    found: list[Item] = []
    at = c.source(out)
    for _ in range(len(c.items)):
        if at is None or at.type == "Input":
            break
        found.append(at)
        at = c.source(at)
    return found


def hidden(c: Canvas) -> None:
    out, last = output(c)
    last = need(last, f"Nothing is wired into the Output '{out.path}' yet.", out)
    require(last.type == "Linear",
            f"The Output '{out.path}' receives the {last.name}: end with a Linear of "
            f"{CLASSES} so that the scores can take any value.", out)
    chain = _layers(c, out)
    linears = [n for n in chain if n.type == "Linear"]
    if len(linears) < 2:
        raise Unmet("The model is still one layer: add a hidden Linear (out_features "
                    f"{HIDDEN}) and a ReLU between the Input and the Linear '{last.path}'.",
                    last.path)
    before = c.source(last)
    if before is not None and before.type == "Linear":
        raise Unmet(f"The Linears '{before.path}' and '{last.path}' follow each other "
                    "directly, and two Linears in a row are just one: put a ReLU between "
                    "them.", last.path)


def deeper(c: Canvas) -> None:
    hidden(c)
    out, last = output(c)
    last = need(last, f"Nothing is wired into the Output '{out.path}' yet.", out)
    activations = [n for n in _layers(c, out) if n.type in ACTIVATIONS]
    require(len(activations) >= 2,
            "The model has one hidden layer: add a second one (a Linear and a ReLU) before "
            f"the Linear '{last.path}'.", last)


def _solutions() -> dict[str, dict[str, object]]:
    s = Sketch("my-digits", "A classifier of 8×8 digits, built with the guided path.")
    out: dict[str, dict[str, object]] = {}
    s.add("x", "Input", (0, 0), shape=[PIXELS], dtype="float32")
    s.add("scores", "Linear", (1, 0), out_features=1).add("y", "Output", (2, 0))
    s.chain("x", "scores", "y")
    out["neuron"] = s.snapshot()

    s.set("scores", out_features=CLASSES)
    out["layer"] = s.snapshot()

    s.unwire("scores").add("hidden1", "Linear", (1, 0), out_features=HIDDEN)
    s.add("act1", "ReLU", (2, 0)).move("scores", (3, 0)).move("y", (4, 0))
    s.chain("x", "hidden1", "act1", "scores")
    out["hidden"] = s.snapshot()

    s.unwire("scores").add("hidden2", "Linear", (3, 0), out_features=HIDDEN)
    s.add("act2", "ReLU", (4, 0)).move("scores", (5, 0)).move("y", (6, 0))
    s.chain("act1", "hidden2", "act2", "scores")
    out["deeper"] = s.snapshot()
    return out


_step = step_maker(_solutions())


PATH = Path(
    name="digits",
    title="From a single neuron to a classifier of digits",
    summary="A neuron, a layer, a hidden layer with ReLU, a deeper network, then training "
            "it to read handwritten 8×8 digits.",
    dataset="digits",
    steps=(
        _step("neuron", "A single neuron", f"""
A neuron multiplies each input by a weight, adds them up with a bias, and gives one number.
The digits here are 8×8 images, read as a row of {PIXELS} pixel values. A **Linear** block
with one output is exactly one neuron.

```text
x1..x{PIXELS} --(w1..w{PIXELS}, b)--> w·x + b
```
""", f"Add an Input with shape [{PIXELS}] (float32), a Linear with out_features 1, and an "
            "Output, in a row.", rule=neuron),
        _step("layer", "A layer of ten", f"""
One number cannot say which of {CLASSES} digits it sees. {CLASSES} neurons side by side,
each with its own weights, give {CLASSES} scores: the highest is the model's answer. That is
still one Linear, with {CLASSES} outputs.
""", f"Set the Linear's out_features to {CLASSES}.", rule=ten_scores),
        _step("hidden", "A hidden layer with ReLU", """
One layer can only draw straight borders between the classes. A hidden layer computes
features first (a stroke here, a loop there), and a **ReLU** (keep positives, zero the rest)
between the two layers lets them bend. Without it, two Linears in a row are still just one.
""", f"Put a Linear with out_features {HIDDEN} and a ReLU between the Input and the Linear "
            "of ten.", rule=hidden),
        _step("deeper", "A deeper network", """
A second hidden layer builds features out of features. Deeper is not always better on
small data, but here it learns the digits at least as well.
""", f"Add a second hidden layer: a Linear ({HIDDEN}) and a ReLU before the Linear of ten.",
            rule=deeper),
        _step("train", "Train it", """
Training shows the model batches of digits, measures how wrong its scores are (the
cross-entropy loss), and moves every weight a little to be less wrong. Watch the validation
accuracy, on digits the model never trained on.
""", "Open the run drawer and train on digits with the default settings.", check="run",
            solution="deeper"),
    ),
)
