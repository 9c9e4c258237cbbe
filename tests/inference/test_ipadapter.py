"""IP-Adapter image prompts (/blend, /imagine style_ref) on the tiny SD 1.5 and SDXL pipelines, with
tiny adapter weights and image encoders in h94/IP-Adapter's layout (inference/testing/vision.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from inference import ipadapter
from inference.media import encode_job_image, read_parameters
from inference.models import RequestRefused
from inference.types import GenerationRequest


def _ref(colour: tuple[int, int, int]) -> str:
    image = Image.new("RGB", (48, 40), colour)
    for x in range(0, 48, 6):  # some structure, so the encoder sees more than a flat colour
        image.putpixel((x, x % 40), (255 - colour[0], 30, 200))
    return encode_job_image(image)


RED, BLUE, GREEN = _ref((220, 20, 20)), _ref((20, 30, 220)), _ref((30, 200, 40))


def _request(model: str = "tiny-sd15", **changes) -> GenerationRequest:  # type: ignore[no-untyped-def]
    values = {"job_id": 1, "model": model, "prompt": "a house", "width": 64, "height": 64, "steps": 2,
              "guidance": 7.0, "seed": 3, "scheduler": "euler"} | changes
    return GenerationRequest(**values)


def _pixels(result) -> bytes:  # type: ignore[no-untyped-def]
    with Image.open(io.BytesIO(result.images[0].png)) as image:
        return image.convert("RGB").tobytes()


def test_blend_changes_the_image_and_records_the_adapter(engine) -> None:  # type: ignore[no-untyped-def]
    plain = engine.run(_request())
    blend = engine.run(_request(ip_images=[RED, BLUE], ip_weights=[1.0, 1.0], ip_mode="blend"))
    assert _pixels(blend) != _pixels(plain)
    text = read_parameters(blend.images[0].png)
    assert "IP Adapter: tiny-ip-adapter-sd15" in text and 'IP Adapter weights: "1, 1"' in text
    # The weights matter: the same images weighted the other way give another image.
    other = engine.run(_request(ip_images=[RED, BLUE], ip_weights=[3.0, 0.5], ip_mode="blend"))
    assert _pixels(other) != _pixels(blend)
    # Same request, same image: the layers built by the first job are reused as they were.
    adapter, _ = ipadapter.job_embeds(engine, engine.registry.get("tiny-sd15"), engine.pipeline("tiny-sd15"),
                                      [RED], [1.0], 7.0)
    built = dict(adapter.layers or {})
    again = engine.run(_request(ip_images=[RED, BLUE], ip_weights=[1.0, 1.0], ip_mode="blend"))
    assert _pixels(again) == _pixels(blend)
    assert built and {k: id(v) for k, v in (adapter.layers or {}).items()} == {k: id(v) for k, v in built.items()}


def test_the_next_job_runs_as_if_no_adapter_was_ever_loaded(engine, tiny_registry) -> None:  # type: ignore[no-untyped-def]
    from inference.engine import Engine

    for model in ("tiny-sd15", "tiny-sdxl"):
        pipe = engine.pipeline(model)
        processors = dict(pipe.unet.attn_processors)
        engine.run(_request(model, ip_images=[RED, GREEN, BLUE], ip_weights=[1, 2, 1], ip_mode="blend"))
        engine.run(_request(model, ip_images=[RED], ip_weights=[1.0], ip_mode="style", ip_scale=1.5))
        after = engine.run(_request(model))
        assert {k: id(v) for k, v in pipe.unet.attn_processors.items()} == {k: id(v) for k, v in processors.items()}
        assert pipe.unet.encoder_hid_proj is None and pipe.unet.config.encoder_hid_dim_type is None
        fresh = Engine(tiny_registry, device="cpu").run(_request(model))
        assert _pixels(after) == _pixels(fresh)


def test_style_reference_on_sdxl_uses_the_style_block_only(engine) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, float] = {}
    unet = engine.pipeline("tiny-sdxl").unet
    adapter, _ = ipadapter.job_embeds(engine, engine.registry.get("tiny-sdxl"), engine.pipeline("tiny-sdxl"),
                                      [RED], [1.0], 6.0)
    with ipadapter.applied(unet, adapter, kind="sdxl", mode="style", scale=0.8):
        for name, processor in unet.attn_processors.items():
            if isinstance(getattr(processor, "scale", None), list):
                seen[name] = processor.scale[0]
    on = {name for name, scale in seen.items() if scale}
    assert on and all(name.startswith("up_blocks.0.attentions.1.") for name in on)
    assert all(seen[name] == 0.8 for name in on) and len(on) < len(seen)
    styled = engine.run(_request("tiny-sdxl", ip_images=[RED], ip_weights=[1.0], ip_mode="style", ip_scale=1.0))
    assert "Style reference: tiny-ip-adapter-sdxl, Style weight: 1" in read_parameters(styled.images[0].png)
    assert _pixels(styled) != _pixels(engine.run(_request("tiny-sdxl")))


def test_sd15_style_reference_takes_the_up_blocks() -> None:
    assert ipadapter.layer_scale("up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", "sd15", "style",
                                 0.7) == 0.7
    assert ipadapter.layer_scale("down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", "sd15", "style",
                                 0.7) == 0.0
    assert ipadapter.layer_scale("down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor", "sd15", "blend",
                                 0.7) == 0.7


def test_a_guidance_free_model_gets_embeddings_without_a_negative(engine) -> None:  # type: ignore[no-untyped-def]
    result = engine.run(_request("tiny-sdxl-turbo", guidance=0.0, steps=1, ip_images=[RED, BLUE],
                                 ip_weights=[1.0, 1.0], ip_mode="blend"))
    assert "IP Adapter: tiny-ip-adapter-sdxl" in read_parameters(result.images[0].png)


@pytest.mark.parametrize(("changes", "words"), [
    ({"ip_images": [RED], "ip_weights": [1.0], "ip_mode": "blend"}, "takes 2-5 images"),
    ({"ip_images": [RED, BLUE], "ip_weights": [1.0], "ip_mode": "blend"}, "needs a weight"),
    ({"ip_images": [RED, BLUE], "ip_weights": [0.0, 0.0], "ip_mode": "blend"}, "at least one above 0"),
    ({"ip_images": [RED], "ip_weights": [1.0], "ip_mode": "style", "ip_scale": 9.0}, "scale must be"),
    ({"ip_images": [RED], "ip_weights": [1.0], "ip_mode": "mix"}, "Unknown image-prompt mode"),
])
def test_the_worker_refuses_bad_image_prompts(engine, changes, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRefused, match=words):
        engine.run(_request(**changes))


def test_a_model_without_an_adapter_for_its_family_is_refused(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRefused, match="No IP-Adapter is installed"):
        ipadapter.adapter_spec(engine, engine.registry.get("tiny-sd2"))


def test_image_prompt_jobs_are_never_batched() -> None:
    assert _request().batch_key() is not None
    assert _request(ip_images=[RED, BLUE], ip_weights=[1, 1], ip_mode="blend").batch_key() is None


def test_the_packaged_entries_download_what_their_loaders_read() -> None:
    from inference.hub import downloads_for
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(None)
    wanted = {name: [(d.repo, d.filename) for d in downloads_for(registry.get(name), "cuda")]
              for name in ("ip-adapter-sd15", "ip-adapter-sdxl", "wd-vit-tagger-v3")}
    assert wanted["ip-adapter-sd15"] == [("h94/IP-Adapter", "models/ip-adapter_sd15.safetensors"),
                                         ("h94/IP-Adapter", "models/image_encoder/config.json"),
                                         ("h94/IP-Adapter", "models/image_encoder/model.safetensors")]
    assert wanted["ip-adapter-sdxl"][0] == ("h94/IP-Adapter", "sdxl_models/ip-adapter_sdxl.safetensors")
    assert wanted["ip-adapter-sdxl"][2] == ("h94/IP-Adapter", "sdxl_models/image_encoder/model.safetensors")
    assert wanted["wd-vit-tagger-v3"] == [("SmilingWolf/wd-vit-tagger-v3", "model.onnx"),
                                          ("SmilingWolf/wd-vit-tagger-v3", "selected_tags.csv")]
    blip = downloads_for(registry.get("blip-large"), "cuda")
    assert [(d.repo, d.filename, d.variant) for d in blip] == [("Salesforce/blip-image-captioning-large", None, None)]


def test_hub_entries_pull_and_run(tiny_models, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The hub layouts: `atelier models pull` fetches an IP-Adapter, a captioner and its tagger, and
    the engine then runs a blend and a describe from the downloaded snapshots, making no request."""
    import io as _io

    from bot.cli.pull import pull
    from inference.engine import Engine
    from inference.models import ModelRegistry
    from tests.fakehub import FakeHub, repo_from, serving, use_hub

    folder = tiny_models.parent
    fake = FakeHub()
    fake.add("h94/IP-Adapter", repo_from(folder / "tiny-ip-adapter", tmp_path / "ip", fp16=False, extras=False))
    fake.add("Salesforce/blip", repo_from(folder / "tiny-blip", tmp_path / "blip", fp16=False, extras=False))
    fake.add("SmilingWolf/tagger", repo_from(folder / "tiny-wd-tagger", tmp_path / "tag", fp16=False, extras=False))
    toml = tmp_path / "models.toml"
    toml.write_text(f"""default = "sd"
packaged = false
[models.sd]
kind = "sd15"
source = "{folder / 'tiny-sd15'}"
[models.ip]
kind = "ip-adapter"
source = "h94/IP-Adapter"
subfolder = "models"
weight_name = "ip-adapter_sd15.safetensors"
serves = "sd1"
[models.blip]
kind = "caption"
source = "Salesforce/blip"
tagger = "tags"
max_new_tokens = 8
[models.tags]
kind = "tagger"
source = "SmilingWolf/tagger"
""", encoding="utf-8")
    registry = ModelRegistry.load(toml)
    with serving(fake):
        use_hub(monkeypatch, fake, tmp_path / "hf-cache")
        out = _io.StringIO()
        assert pull(registry, ["ip", "blip"], "cpu", out) == 0
        fetched = fake.downloads()
        assert "/h94/IP-Adapter/resolve/main/models/ip-adapter_sd15.safetensors" in fetched
        assert not any("sdxl_models" in path for path in fetched)
        assert any(path.endswith("selected_tags.csv") for path in fetched)
        fake.requests.clear()
        engine = Engine(registry, device="cpu")
        blend = engine.run(_request("sd", ip_images=[RED, BLUE], ip_weights=[1.0, 1.0], ip_mode="blend"))
        assert "IP Adapter: ip" in read_parameters(blend.images[0].png)
        described = engine.run(GenerationRequest(job_id=2, model="blip", prompt="Describe", task="describe",
                                                 init_image=RED, steps=1, guidance=0.0,
                                                 extra={"tagger": "tags", "anime": "on"}))
        assert len(described.parameters.split("\n")) == 4
        assert fake.requests == []
