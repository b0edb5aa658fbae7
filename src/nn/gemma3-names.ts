// Tensor names of Gemma3ForConditionalGeneration checkpoints (model_type "gemma3"), whose text
// model nla runs. Published files (google/gemma-3-*-it) use the layout before transformers 4.52:
// language_model.model.*, vision_tower.*, multi_modal_projector.*; files saved by newer
// versions use model.language_model.*, model.vision_tower.*, model.multi_modal_projector.* and
// lm_head.* (its _checkpoint_conversion_mapping maps the old names to these).

const VISION = /^(?:model\.)?(?:vision_tower|multi_modal_projector)\./;

/** True for the vision tower's and the projector's tensors: never read (nla runs the text model). */
export function isGemma3VisionTensor(name: string): boolean {
  return VISION.test(name);
}

/**
 * The text model's name as Gemma3ForCausalLM spells it (model.*, lm_head.weight); other names
 * are returned unchanged, so Weights.validate refuses them as unexpected.
 */
export function gemma3TextName(name: string): string {
  if (name.startsWith('language_model.model.')) return 'model.' + name.slice('language_model.model.'.length);
  if (name.startsWith('model.language_model.')) return 'model.' + name.slice('model.language_model.'.length);
  if (name === 'language_model.lm_head.weight') return 'lm_head.weight';
  return name;
}

/**
 * Rename a gemma3-wrapper checkpoint's text tensors in place (any map of name to tensor);
 * a no-op for other configs. Two names for one weight are an error naming both.
 */
export function renameTextTensors<T>(wrapper: string | undefined, map: Map<string, T>, source: string): void {
  if (wrapper !== 'gemma3') return;
  for (const [k, t] of [...map]) {
    const n = gemma3TextName(k);
    if (n === k) continue;
    if (map.has(n)) throw new Error(`${source}: tensors "${k}" and "${n}" are the same weight of the text model; the checkpoint holds both`);
    map.delete(k);
    map.set(n, t);
  }
}
