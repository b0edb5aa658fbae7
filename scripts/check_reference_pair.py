"""Check an exported reference pair with the Python libraries the reference implementation uses
(PyYAML, tokenizers, jinja2 set up as transformers renders chat templates), following the
loader checks of ../shared/docs/NLA-REFERENCE-FORMAT.md §1 and §3. Run by hand, never by the
tests (nla's tests must not need Python):

    pip install tokenizers pyyaml jinja2
    python3 scripts/check_reference_pair.py PAIR_DIR [EXPECTED.json]

EXPECTED.json (optional) holds ids nla computed: {"av_prompt": [...], "ar_ids": [...],
"ar_example": "...", "target": [...], "target_example": "..."}; they must match exactly.
Exit status 0 when every check passes.
"""
import json
import math
import os
import sys

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def render(tc, messages, gen):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(m):
        raise RuntimeError(m)

    env.globals["raise_exception"] = raise_exception
    specials = {k: tc[k] for k in ("bos_token", "eos_token", "unk_token") if isinstance(tc.get(k), str)}
    return env.from_string(tc["chat_template"]).render(messages=messages, add_generation_prompt=gen, **specials)


def check_half(d, role_names):
    meta = yaml.safe_load(open(os.path.join(d, "nla_meta.yaml")))
    if meta.get("kind") != "nla_model" or meta.get("role") not in role_names:
        fail(f"{d}: kind/role {meta.get('kind')}/{meta.get('role')}")
    cfg = json.load(open(os.path.join(d, "config.json")))
    if meta["d_model"] != cfg["hidden_size"]:
        fail(f"{d}: d_model {meta['d_model']} != hidden_size {cfg['hidden_size']}")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    t = meta["tokens"]
    alone = tok.encode(t["injection_char"], add_special_tokens=False).ids
    if alone != [t["injection_token_id"]]:
        fail(f"{d}: the char encodes to {alone}, sidecar says [{t['injection_token_id']}]")
    tmpl = meta["prompt_templates"].get("av") or meta["prompt_templates"]["actor"]
    content = tmpl.replace("{injection_char}", t["injection_char"])
    text = render(tc, [{"role": "user", "content": content}], True)
    ids = tok.encode(text, add_special_tokens=False).ids
    hits = [i for i, x in enumerate(ids) if x == t["injection_token_id"]]
    if len(hits) != 1 or hits[0] in (0, len(ids) - 1):
        fail(f"{d}: injection id at {hits} of {len(ids)}")
    p = hits[0]
    if ids[p - 1] != t["injection_left_neighbor_id"] or ids[p + 1] != t["injection_right_neighbor_id"]:
        fail(f"{d}: neighbours {ids[p - 1]}, {ids[p + 1]} vs sidecar {t['injection_left_neighbor_id']}, {t['injection_right_neighbor_id']}")
    return meta, cfg, tok, tc, ids


def main():
    pair = sys.argv[1]
    av, ar = os.path.join(pair, "av"), os.path.join(pair, "ar")
    am, acfg, atok, atc, prompt = check_half(av, ("actor", "av"))
    rm, rcfg, rtok, _, _ = check_half(ar, ("critic", "ar"))
    k = rm.get("critic", {}).get("extraction_layer_index", rm.get("extraction_layer_index"))
    if rcfg["num_hidden_layers"] != k + 1:
        fail(f"ar: num_hidden_layers {rcfg['num_hidden_layers']} != K+1 = {k + 1}")
    if not isinstance(rm["extraction"]["mse_scale"], (int, float)):
        fail("ar: mse_scale not numeric")
    if not os.path.exists(os.path.join(ar, "value_head.safetensors")):
        fail("ar: no value_head.safetensors")
    arT = rm["prompt_templates"].get("ar") or rm["prompt_templates"]["critic"]
    print("mse_scale", rm["extraction"]["mse_scale"], "= sqrt(d)?", math.isclose(rm["extraction"]["mse_scale"], math.sqrt(rm["d_model"])))
    print("AV prompt ids (tokenizers + jinja2):", prompt)
    if len(sys.argv) > 2:
        exp = json.load(open(sys.argv[2]))
        if prompt != exp["av_prompt"]:
            fail(f"AV prompt differs from nla's {exp['av_prompt']}")
        ar_ids = rtok.encode(arT.replace("{explanation}", exp["ar_example"]), add_special_tokens=True).ids
        if ar_ids != exp["ar_ids"]:
            fail(f"AR ids {ar_ids} differ from nla's {exp['ar_ids']}")
        full = render(atc, [{"role": "user", "content": am["prompt_templates"]["actor"].replace("{injection_char}", am["tokens"]["injection_char"])},
                            {"role": "assistant", "content": "<explanation>\n" + exp["target_example"] + "\n</explanation>"}], False)
        tgt = atok.encode(full, add_special_tokens=False).ids[len(prompt):]
        if tgt != exp["target"]:
            fail(f"assistant turn {tgt} differs from nla's target {exp['target']}")
        print("AR ids, AV prompt and SFT target equal nla's")
    print("OK")


main()
