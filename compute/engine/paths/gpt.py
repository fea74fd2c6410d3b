"""The path "Build a GPT from scratch": from character ids to a small GPT that writes.

The model is kept small enough to train on a CPU in a few minutes with the default
settings: 32 characters at a time, 64 features, 4 heads, 2 blocks.
"""

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

T = 32  # characters the model reads at a time
C = 64  # features per position: the width of the stream
HEADS = 4
HIDDEN = 4 * C  # the MLP's width
LAYERS = 2
VOCAB = 128  # the texts are ASCII ids 0..127

NORMS = ("LayerNorm", "RMSNorm")
MAX_CANDIDATES = 20  # blocks weighed as "the" MLP or residual Add, in the document's order
ACTIVATIONS = ("GELU", "ReLU", "SiLU", "Tanh", "Sigmoid")


def _last(shape: tuple[int | str, ...] | None) -> int | None:
    return shape[-1] if shape and isinstance(shape[-1], int) else None


# The predicates, one per canvas step; each finds what the steps before it built.


def tokens(c: Canvas) -> Item:
    inputs = c.of_type("Input", top=True)
    require(bool(inputs), "There is no Input yet: add an Input block, where the characters "
            "enter the model.")
    found = first(inputs, lambda i: i.written("dtype", "float32") == "int64")
    if found is None:
        raise Unmet(f"The Input '{inputs[0].path}' reads float32 numbers, but characters "
                    "enter as whole-number ids: set its dtype to int64.", inputs[0].path)
    require("shape" in found.raw, f"The Input '{found.path}' has no shape yet: set its "
            f"shape to [{T}], the characters it reads at a time.", found)
    c.fixed(found)
    shape = found.param("shape")
    require(len(shape) == 1,
            f"The Input '{found.path}' has the shape {list(shape)}, but a piece of text is one "
            f"row of character ids: set its shape to [{T}].", found)
    return found


def tokens_reach_an_output(c: Canvas) -> None:
    tok = tokens(c)
    if any(c.feeds_into(tok, o) for o in c.of_type("Output", top=True)):
        return
    # Name where the chain from the Input stops (the block added last, when it forks):
    # that is the block to wire on, not the Input far above it.
    after = c.downstream(tok)
    ends = [i for i in c.items.values() if i.path in after and i.container is None
            and i.type != "Output" and not c.consumers(i)]
    if not ends:
        raise Unmet(f"The Input '{tok.path}' leads to no Output yet: wire it into an Output "
                    "block, which gives the model's result back.", tok.path)
    # A Repeat's output resolves to the block inside it, so a Repeat looks like an end
    # even when wired on: a plain block is named first.
    end = ([i for i in ends if i.node.graph is None] or ends)[-1]
    raise Unmet(f"The Input '{tok.path}' leads to no Output yet: its chain stops at "
                f"'{end.path}', so wire '{end.path}' into an Output block, which gives the "
                "model's result back.", end.path)


def embedding(c: Canvas) -> Item:
    tok = tokens(c)
    found = first(c.of_type("Embedding"), lambda e: c.source(e) is tok)
    if found is None:
        others = c.of_type("Embedding")
        if others:
            raise Unmet(f"The Embedding '{others[0].path}' does not read the Input "
                        f"'{tok.path}': wire '{tok.path}' into it.", others[0].path)
        raise Unmet("Nothing turns the character ids into vectors yet: add an Embedding "
                    f"block fed by the Input '{tok.path}'.")
    rows = found.param("num_embeddings")
    require(rows is None or rows >= VOCAB,
            f"The Embedding '{found.path}' has {rows} rows but the characters are ids from 0 "
            f"to {VOCAB - 1}: set num_embeddings to {VOCAB}.", found)
    shape = shaped(c, found)
    require(len(shape) == 3, f"The Embedding '{found.path}' gives {shape_text(shape)}, but "
            "each character should become one vector: [B, T, C].", found)
    return found


def positions(c: Canvas) -> Item:
    emb = embedding(c)
    candidates = c.of_type("PositionalEmbedding")
    found = first(candidates, lambda p: c.source(p, through=("Dropout",)) is emb)
    if found is None:
        if candidates:
            raise Unmet(f"The PositionalEmbedding '{candidates[0].path}' does not read the "
                        f"Embedding '{emb.path}': wire '{emb.path}' into it.",
                        candidates[0].path)
        raise Unmet("Nothing tells the model where each character stands yet: add a "
                    f"PositionalEmbedding fed by the Embedding '{emb.path}'.")
    length = tokens(c).param("shape")[0]
    longest = found.param("max_len")
    require(longest is None or longest >= length,
            f"The PositionalEmbedding '{found.path}' knows {longest} positions but the text "
            f"comes {length} characters at a time: set max_len to {length}.", found)
    shaped(c, found)
    return found


def attention(c: Canvas) -> Item:
    pos = positions(c)
    every = c.of_type("MultiHeadAttention")
    after = [a for a in every if c.feeds_into(pos, a)]
    if not after:
        if every:
            raise Unmet(f"The attention '{every[0].path}' does not come after the "
                        f"PositionalEmbedding '{pos.path}': wire '{pos.path}' into it.",
                        every[0].path)
        raise Unmet("No attention yet: add a MultiHeadAttention block after the "
                    f"PositionalEmbedding '{pos.path}', with one head (num_heads 1) and "
                    "causal on.")
    found = first(after, lambda a: a.param("causal") is True) or after[0]
    require(found.param("causal") is not False,
            f"The attention '{found.path}' lets each position see the characters after it: "
            "turn causal on, or predicting the next character becomes copying it.", found)
    shaped(c, found)
    return found


def heads(c: Canvas) -> None:
    att = attention(c)
    count = att.param("num_heads")
    require(count is None or count >= 2,
            f"The attention '{att.path}' has one head: set num_heads to {HEADS}, so that it "
            f"can look for {HEADS} different things at once.", att)


def residual(c: Canvas) -> Item:
    att = attention(c)
    norm = need(c.source(att), f"Nothing feeds the attention '{att.path}' yet.", att)
    require(norm.type in NORMS,
            f"The attention '{att.path}' reads the stream as it is: put a LayerNorm between "
            f"'{norm.path}' and '{att.path}', so that it reads numbers of a steady size.", att)
    stream = c.source(norm)
    stream_name = f"'{stream.path}'" if stream else "the stream"
    adds = [a for a in c.of_type("Add")
            if any(c.source(a, port, through=("Dropout",)) is att for port in ("a", "b"))]
    require(bool(adds), "Nothing adds the attention's output back to the stream yet: add an "
            f"Add block fed by '{att.path}' and by {stream_name}, the stream it reads.", att)

    def adds_the_stream(add: Item) -> bool:
        port = "b" if c.source(add, "a", through=("Dropout",)) is att else "a"
        other = c.source(add, port)
        return other is not None and other.type not in NORMS and c.feeds_into(other, att)

    add = need(first(adds[:MAX_CANDIDATES], adds_the_stream),
               f"The Add '{adds[0].path}' should add the attention's output to the stream it "
               f"reads: feed it {stream_name} (from before the LayerNorm) on its other input.",
               adds[0])
    shaped(c, add)
    return add


def mlp(c: Canvas) -> Item:
    res = residual(c)
    width = _last(res.out_shape())
    pairs: list[tuple[Item, Item]] = []
    for proj in c.of_type("Linear"):
        act = c.source(proj)
        fc = c.source(act) if act is not None and act.type in ACTIVATIONS else None
        if fc is not None and fc.type == "Linear" and c.feeds_into(res, fc):
            pairs.append((fc, proj))
    pairs += [(m, m) for m in c.of_type("GatedMLP", "MixtureOfExperts")
              if c.feeds_into(res, m)]
    if not pairs:  # two Linears in a row: the activation is what is missing
        for proj in c.of_type("Linear")[:MAX_CANDIDATES]:
            fc = c.source(proj)
            require(fc is None or fc.type != "Linear" or not c.feeds_into(res, fc),
                    f"The Linears '{fc.path if fc else ''}' and '{proj.path}' follow each "
                    f"other with nothing between them, so together they are one Linear: put "
                    f"a GELU between them.", proj)
    require(bool(pairs), f"No MLP after the attention yet: after the Add '{res.path}', add a "
            f"LayerNorm, a Linear {HIDDEN} wide, a GELU and a Linear back to {width or C}, "
            "in a row.")
    # The first that is a whole MLP wins; if none is, the first says what it lacks. A few
    # are weighed at most: each may walk the graph.
    first_unmet: Unmet | None = None
    for fc, proj in pairs[:MAX_CANDIDATES]:
        try:
            return _whole_mlp(c, res, width, fc, proj)
        except Unmet as unmet:
            first_unmet = first_unmet or unmet
    assert first_unmet is not None
    raise first_unmet


def _whole_mlp(c: Canvas, res: Item, width: int | None, fc: Item, proj: Item) -> Item:
    out = _last(shaped(c, proj))
    require(out == width, f"The Linear '{proj.path}' gives {out} features but the stream is "
            f"{width} wide: set its out_features to {width}.", proj)
    before = c.source(fc)
    require(before is not None and before.type in NORMS,
            f"The MLP's first Linear '{fc.path}' reads the stream as it is: put a LayerNorm "
            f"before it.", fc)
    if fc is not proj and width is not None:
        wide = _last(shaped(c, fc))
        require(wide is not None and wide > width,
                f"The MLP's first Linear '{fc.path}' gives {wide} features, no more than the "
                f"stream's {width}: set its out_features to {HIDDEN} (four times the stream), "
                "room for the MLP to work in.", fc)
    for add in c.of_type("Add"):
        sides = [c.source(add, port, through=("Dropout",)) for port in ("a", "b")]
        if proj not in sides:
            continue
        other = c.source(add, "b" if sides[0] is proj else "a")
        if (other is not None and other.type not in NORMS and other.path in c.upstream(fc)
                and (other is res or c.feeds_into(res, other))):
            return proj
    raise Unmet("Nothing adds the MLP's output back to the stream yet: add an Add block fed "
                f"by '{proj.path}' and by '{res.path}'.", proj.path)


def repeated(c: Canvas) -> Item:
    att = attention(c)
    end = mlp(c)
    holder = c.items.get(att.container) if att.container else None
    holder = need(holder if holder is not None and holder.type == "Repeat" else None,
                  "The transformer block is drawn once: move it (LayerNorm, attention, Add, "
                  "LayerNorm, MLP, Add) into a Repeat block, so that it runs several times "
                  "in a row.", att)
    require(end.container == holder.path,
            f"The MLP ('{end.path}') is outside the Repeat '{holder.path}': move it inside, "
            "next to the attention, so that every copy of the block has both.", end)
    times = holder.param("times")
    require(times is None or times >= 2,
            f"The Repeat '{holder.path}' runs its block once: set times to {LAYERS} or more.",
            holder)
    return holder


def head(c: Canvas) -> None:
    att = attention(c)
    outputs = [o for o in c.of_type("Output", top=True) if c.feeds_into(att, o)]
    require(bool(outputs), "No Output comes after the transformer blocks: wire the last "
            "block's result, through a LayerNorm and a Linear, into the Output.")
    out = outputs[0]
    last = need(c.source(out), f"Nothing is wired into the Output '{out.path}' yet.", out)
    shape = out.in_shape()
    require(last.type == "Linear",
            f"The Output '{out.path}' receives {shape_text(shape)}, the stream itself: add a "
            f"LayerNorm and a Linear with out_features {VOCAB} before it, one score for each "
            "character id.", out)
    scores = _last(shaped(c, last))
    require(scores is not None and scores >= VOCAB,
            f"The Linear '{last.path}' gives {scores} scores per position, but there are "
            f"{VOCAB} character ids: set its out_features to {VOCAB}.", last)
    norm = c.source(last)
    require(norm is not None and norm.type in NORMS,
            f"The head '{last.path}' reads the stream as it is: put a LayerNorm before it.",
            last)


# The solutions: one canvas, drawn step by step.


def _solutions() -> dict[str, dict[str, object]]:
    s = Sketch("my-gpt", "A character-level GPT, built step by step with the guided path.")
    out: dict[str, dict[str, object]] = {}
    s.add("tokens", "Input", (0, 0), shape=[T], dtype="int64")
    s.add("logits", "Output", (1, 0)).wire("tokens", "logits")
    out["tokens"] = s.snapshot()

    s.unwire("logits").add("wte", "Embedding", (1, 0), num_embeddings=VOCAB, embedding_dim=C)
    s.chain("tokens", "wte", "logits").move("logits", (2, 0))
    out["embedding"] = s.snapshot()

    s.unwire("logits").add("wpe", "PositionalEmbedding", (2, 0), max_len=T)
    s.chain("wte", "wpe", "logits").move("logits", (3, 0))
    out["positions"] = s.snapshot()

    s.unwire("logits").add("attn", "MultiHeadAttention", (4, 0), num_heads=1, causal=True)
    s.chain("wpe", "attn", "logits").move("logits", (5, 0))
    out["attention"] = s.snapshot()

    s.set("attn", num_heads=HEADS)
    out["heads"] = s.snapshot()

    s.unwire("attn").unwire("logits").add("ln1", "LayerNorm", (3, 0)).add("res1", "Add", (5, 0))
    s.chain("wpe", "ln1", "attn").wire("wpe", "res1.a").wire("attn", "res1.b")
    s.wire("res1", "logits").move("logits", (6, 0))
    out["residual"] = s.snapshot()

    s.unwire("logits")
    s.add("ln2", "LayerNorm", (6, 0)).add("fc", "Linear", (7, 0), out_features=HIDDEN)
    s.add("gelu", "GELU", (8, 0)).add("proj", "Linear", (9, 0), out_features=C)
    s.add("res2", "Add", (10, 0))
    s.chain("res1", "ln2", "fc", "gelu", "proj").wire("res1", "res2.a").wire("proj", "res2.b")
    s.wire("res2", "logits").move("logits", (11, 0))
    out["mlp"] = s.snapshot()

    block = Sketch()
    block.add("x", "Input", (0, 0)).add("ln1", "LayerNorm", (1, 0))
    block.add("attn", "MultiHeadAttention", (2, 0), num_heads=HEADS, causal=True)
    block.add("res1", "Add", (3, 0)).add("ln2", "LayerNorm", (4, 0))
    block.add("fc", "Linear", (5, 0), out_features=HIDDEN).add("gelu", "GELU", (6, 0))
    block.add("proj", "Linear", (7, 0), out_features=C).add("res2", "Add", (8, 0))
    block.add("y", "Output", (9, 0))
    block.chain("x", "ln1", "attn").wire("x", "res1.a").wire("attn", "res1.b")
    block.chain("res1", "ln2", "fc", "gelu", "proj").wire("res1", "res2.a")
    block.wire("proj", "res2.b").wire("res2", "y")
    s.remove("ln1", "attn", "res1", "ln2", "fc", "gelu", "proj", "res2")
    s.add("blocks", "Repeat", (3, 0), graph=block, times=LAYERS)
    s.chain("wpe", "blocks", "logits").move("logits", (4, 0))
    out["repeat"] = s.snapshot()

    s.unwire("logits").add("ln_f", "LayerNorm", (4, 0))
    s.add("head", "Linear", (5, 0), out_features=VOCAB, bias=False)
    s.chain("blocks", "ln_f", "head", "logits").move("logits", (6, 0))
    out["head"] = s.snapshot()
    return out


_step = step_maker(_solutions())


PATH = Path(
    name="gpt",
    title="Build a GPT from scratch",
    summary="From an empty canvas to a small GPT that writes Shakespeare-like text, one "
            "idea at a time: token ids, embeddings, positions, attention, residual "
            "connections, the MLP, stacked blocks, the head, then training it and reading "
            "what it learnt.",
    dataset="shakespeare",
    steps=(
        _step("tokens", "Characters as token ids", f"""
A language model never sees letters, only numbers. Here every character is its ASCII code:
`h` is 104, `e` is 101, a space is 32, so the ids go from 0 to {VOCAB - 1}. The model reads
the text {T} characters at a time, and for each of them it will learn to guess the next.

```text
"to be or" -> [116, 111, 32, 98, 101, 32, 111, 114] -> model
```
""", f"Add an Input with shape [{T}] and dtype int64 (whole numbers), and wire it into an "
            "Output.", rule=tokens_reach_an_output),
        _step("embedding", "An embedding: one vector per character", f"""
An id says which character it is, but not what it is like. An **Embedding** is a table with
one learned row of numbers per id: the id picks its row. Training moves the rows so that
characters used alike (vowels, say) get similar vectors. {VOCAB} ids need {VOCAB} rows;
each row here has {C} numbers, the width of everything that follows.

```text
[B, {T}] ids  --Embedding {VOCAB}x{C}-->  [B, {T}, {C}] vectors
```

A block's input takes one wire. To put the Embedding between the Input and the Output, select
the wire into the Output and press Delete, then wire Input → Embedding → Output. Every step
that adds a block before the Output goes the same way.
""", f"Add an Embedding with num_embeddings {VOCAB} and embedding_dim {C}, fed by the Input "
            "and feeding the Output (delete the old wire into the Output first).",
            rule=embedding),
        _step("positions", "Positions", f"""
The vectors say which characters are there but not in which order: "dog" and "god" would
look the same to what comes next. A **PositionalEmbedding** learns one more vector per
position, 0 to {T - 1}, and adds it to the character's own (the addition is inside the
block): position and identity travel together in one vector.

```text
wte("d") + wpe(0),  wte("o") + wpe(1),  wte("g") + wpe(2)
```
""", f"Add a PositionalEmbedding (max_len {T}) after the Embedding.", rule=positions),
        _step("attention", "One attention head", """
Attention lets each position gather information from the others. Every position asks a
question (its query) and offers a key (what it holds) and a value (what it passes on); where
a query matches a key, that value flows in. **Causal** attention lets a position look only
at itself and what came before: the model must guess the next character, not read it.

```text
position:   t   o   _   b   e
"e" looks: .1  .1  .2  .4  .2   (at itself and to its left; the weights sum to 1)
```
""", "Add a MultiHeadAttention after the PositionalEmbedding, with num_heads 1 and causal "
            "on.", rule=attention),
        _step("heads", "Several heads", f"""
One head makes one weighted average per position, so it can follow one pattern at a time.
With {HEADS} heads the {C} features are split into {HEADS} groups of {C // HEADS}, each with
its own queries and keys: one head may track the previous letter while another finds the
start of the word. The cost is the same; the heads' results are joined again.
""", f"Set the attention's num_heads to {HEADS}.", rule=heads),
        _step("residual", "Residual connection and LayerNorm", """
Deep networks train well when each block *adds* its result to what it read instead of
replacing it: the stream of vectors flows straight through, and the block only writes a
correction. A **LayerNorm** before the attention gives it numbers of a steady size, whatever
the stream carries.

```text
stream --+--> LayerNorm --> attention --> Add --> on
         |                                 ^
         '---------------------------------'
```
""", "Put a LayerNorm before the attention, and add an Add fed by the attention and by the "
            "stream that enters the LayerNorm.", rule=residual),
        _step("mlp", "The MLP", f"""
Attention moves information between positions; the **MLP** then thinks about each position
on its own: a Linear {HIDDEN} wide (four times the stream), a GELU, and a Linear back to
{C}. It too reads through a LayerNorm and adds its result to the stream. Attention plus MLP
is one transformer block.
""", f"After the first Add: a LayerNorm, a Linear ({HIDDEN}), a GELU, a Linear ({C}), and an "
            "Add fed by that last Linear and by the first Add.", rule=mlp),
        _step("repeat", "The block, repeated", f"""
One block can only do so much. GPTs stack the same block many times, each copy with its own
weights: early copies tend to find letters and pairs, later ones words. A **Repeat** holds the block
once and runs it `times` times in a row; {LAYERS} are enough for this small model.
""", f"Select the block's eight blocks (LayerNorm, attention, Add, LayerNorm, Linear, GELU, "
            f"Linear, Add: Shift+click each, or Shift+drag a box around them) and press "
            f"Ctrl/Cmd+G to make them a Repeat; set its times to {LAYERS} in the inspector.",
            rule=repeated),
        _step("head", "The head: a score for every next character", f"""
After the blocks, each position holds a vector that knows about the text so far. A final
LayerNorm and a Linear with {VOCAB} outputs turn it into one score per possible next
character; training turns those scores into probabilities (a softmax inside the loss).

```text
[B, {T}, {C}] --LayerNorm--> --Linear {C}x{VOCAB}--> [B, {T}, {VOCAB}] scores
```
""", f"Add a LayerNorm and a Linear with out_features {VOCAB} between the Repeat and the "
            "Output; in the Linear's form, untick bias (the LayerNorm before it already "
            "shifts the numbers).", rule=head),
        _step("train", "Train it", """
Training shows the model a batch of text windows, measures how surprised it was by each
true next character (the loss), and nudges every weight to be less surprised. The
validation loss, on a part of the plays the model never trains on, tells whether it learns
the language or only memorises.

The default run is 300 steps: a few minutes on a laptop's CPU, with the curve drawn as it
goes. In a hurry, set steps to 60 and, under Advanced, the eval interval to 20: the
validation loss is measured every eval interval steps, so a run shorter than one has none.
""", "Open the run drawer (Runs ▴ in the status line), keep the dataset shakespeare, press "
            "Run, and watch the validation loss fall.", check="run", solution="head"),
        _step("attention_maps", "Read the attention maps", """
Each head leaves a map: a row per position, showing where it looked. Look for a head whose
bright cells sit just left of the diagonal (it reads the previous character), and for heads
that jump back to a space or the start of a line.
""", "Open the attention tab of your finished run and hover over the cells.",
            check="attention", solution="head"),
        _step("generate", "Generate text", """
To write, the model scores the next character, one is drawn from those probabilities, added
to the text, and the model goes again. After a short training it spells words and names of
speakers; a longer run gets more of the grammar.
""", "Open the Samples tab of your finished run and read the text it wrote as it trained.",
            check="generate",
            solution="head"),
    ),
)
