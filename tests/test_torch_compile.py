"""RandomAffine under torch.compile(fullgraph=True): the sampler and the call-order stream
as custom ops (affine_aug::sample, affine_aug::next_keys), compiled output equal to eager
output for the same keys, no graph breaks, recompiles bounded over batch sizes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import affine_aug as aa  # noqa: E402
from affine_aug.torch import RandomAffine, warp_affine  # noqa: E402
from affine_aug.torch import _cpu, _stream  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

CFG = {"rotate": [-40, 40], "scale": [0.7, 1.3], "shear": [-10, 10], "translate": {"x": [-0.2, 0.2], "y": [-0.2, 0.2]}}
SETTINGS = dict(interpolation="bicubic", border="reflect", fill=[0.25, 0.5, 0.75])

pytestmark = pytest.mark.skipif(not _cpu.available(), reason="the compiled kernels were not built")


def _batch(dtype, n, seed=0):
    x = torch.rand(n, 3, 11, 13, generator=torch.Generator().manual_seed(seed))
    return (x * 255).round().to(dtype) if dtype == torch.uint8 else x.to(dtype)


def _compiled_against_eager(dtype, backend, sizes):
    torch._dynamo.reset()
    counters.clear()
    settings = SETTINGS if dtype.is_floating_point else dict(SETTINGS, fill=[3, 100, 255])
    compiled, eager = RandomAffine(CFG, seed=7, **settings), RandomAffine(CFG, seed=7, **settings)
    f = torch.compile(compiled, fullgraph=True, backend=backend)
    for i, n in enumerate(sizes):
        x = _batch(dtype, n, seed=i)
        if n > 1:
            torch._dynamo.mark_dynamic(x, 0)  # one graph for every batch size > 1
        y = f(x)
        assert y.dtype == dtype and y.shape == x.shape
        assert torch.equal(y, eager(x)), (dtype, n)
        assert compiled._counter == eager._counter
    return counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_affine_fullgraph_equals_eager_with_bounded_recompiles(dtype):
    """aot_eager: the graph as compiled, without code generation (fast)."""
    graphs = _compiled_against_eager(dtype, "aot_eager", [4, 7, 2, 9, 1, 3])
    assert graphs == 2  # batch sizes > 1 share one graph; a batch of 1 is torch's own specialisation


def test_random_affine_inductor_equals_eager():
    """Code generation too: the inverses computed by the generated code are the same bits."""
    assert _compiled_against_eager(torch.float32, "inductor", [5, 8]) == 1


def test_no_graph_breaks():
    t = RandomAffine(CFG, seed=1, **SETTINGS)
    explained = torch._dynamo.explain(t)(_batch(torch.float32, 4))
    assert explained.graph_break_count == 0 and explained.graph_count == 1


def test_compiled_draws_are_the_keyed_draws_and_the_stream_continues_eagerly():
    """Key k of the stream under the seed, whatever the batching; compiled and eager calls
    share one call-order stream."""
    torch._dynamo.reset()
    t = RandomAffine(CFG, seed=11, interpolation="nearest")
    f = torch.compile(t, fullgraph=True, backend="aot_eager")
    x = _batch(torch.float32, 5)
    outs = [f(x[:2]), t(x[2:4]), f(x[4:])]  # keys 0-1 compiled, 2-3 eager, 4 compiled
    m = aa.sample(CFG, np.arange(5), size=(11, 13), seed=11).matrices
    assert torch.equal(torch.cat(outs), warp_affine(x, m, interpolation="nearest"))
    assert t._counter == 5


def test_seed_from_torch_under_compile():
    """Without a seed the stream derives from torch.initial_seed(), compiled or not."""
    torch._dynamo.reset()
    torch.manual_seed(123)
    x = _batch(torch.float32, 3)
    compiled = torch.compile(RandomAffine(CFG), fullgraph=True, backend="aot_eager")(x)
    eager = RandomAffine(CFG)(x)
    assert torch.equal(compiled, eager)
    assert torch.equal(eager, RandomAffine(CFG, seed=123)(x))


@pytest.mark.parametrize("seed, keys", [(0, [0, 1, 2]), (2**64 - 1, [2**63 + 5, 3, 2**64 - 1]), (2**63, [7])])
def test_sample_op_is_the_keyed_sampler(seed, keys):
    """64-bit seeds and keys travel as int64 holding their bits."""
    text = _stream.config_text(aa.load_config(CFG))
    ids = torch.tensor(np.array(keys, dtype=np.uint64).view(np.int64))
    got = torch.ops.affine_aug.sample(text, torch.tensor([_stream.as_bits(seed)]), ids, 20, 30)
    want = aa.sample(CFG, np.array(keys, dtype=np.uint64), size=(20, 30), seed=seed).matrices
    assert got.dtype == torch.float64 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), want)


def test_sample_op_parses_a_config_text_it_has_not_seen():
    """Another process's text (the op only sees the string) is parsed there, once."""
    cfg = aa.load_config({"rotate": [-3, 3], "flip": {"horizontal": 0.5}})
    text = _stream.config_text(cfg)
    _stream._CONFIGS.pop(text)
    got = torch.ops.affine_aug.sample(text, torch.tensor([5]), torch.arange(4), 8, 8)
    np.testing.assert_array_equal(got.numpy(), aa.sample(cfg, np.arange(4), size=(8, 8), seed=5).matrices)
    assert _stream._CONFIGS[text] == cfg


def test_the_ops_pass_torch_library_opcheck():
    """Schemas, fake (meta) implementations and the declared mutation, as torch checks them."""
    text = _stream.config_text(aa.load_config(CFG))
    torch.library.opcheck(torch.ops.affine_aug.sample.default, (text, torch.tensor([3]), torch.arange(6), 9, 10))
    torch.library.opcheck(torch.ops.affine_aug.next_keys.default, (_stream.new_stream(), 4, 9))


def test_fake_implementations_give_shapes_only():
    from torch._subclasses.fake_tensor import FakeTensorMode

    text = _stream.config_text(aa.load_config(CFG))
    with FakeTensorMode():
        m = torch.ops.affine_aug.sample(
            text, torch.zeros(1, dtype=torch.int64), torch.zeros(6, dtype=torch.int64), 9, 9
        )
        keys = torch.ops.affine_aug.next_keys(_stream.new_stream(), 6, None)
    assert m.shape == (6, 3, 3) and m.dtype == torch.float64 and m.device.type == "cpu"
    assert keys.shape == (6,) and keys.dtype == torch.int64


def test_next_keys_advances_the_stream_in_place():
    s = _stream.new_stream()
    assert torch.ops.affine_aug.next_keys(s, 3, -1).tolist() == [0, 1, 2]  # seed 2**64 - 1, as its bits
    keys, seed = _stream.next_keys(s, 2, 2**64 - 1)
    assert keys.tolist() == [3, 4] and seed.tolist() == [-1]
    assert _stream.advance(s, 1, 2**64 - 1) == (2**64 - 1, 5)
    assert s.tolist()[2] == 6
