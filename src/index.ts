// nla's public API. Layers, in the direction data flows: tensor engine -> file formats ->
// transformer models -> NLA. Everything a user imports comes from here.

// The tensor engine: Tensor, ops (each with its gradient), autograd, memory scopes, optimizers.
export * from './tensor/index.js';
export { startProfiling, profileReport, profileDetail } from './tensor/profile.js';

// Property-testing helpers (the ones nla's own kernel tests use) and the float64 reference.
export { checkOp, property, fcRuns, randomNd, randomInts, arbShape, arbBroadcastPair, Nd } from './testing/property.js';
export type { CheckSpec } from './testing/property.js';
export * as reference from './tensor/reference/core.js';
export { rng, gaussian, SeededRng } from './util/rng.js';

// File formats: safetensors, llama2.c, HF config.json, tokenizers, model lookup.
export * from './io/index.js';
// Both layers define numel (same meaning); the engine's is the public one.
export { numel } from './tensor/shape.js';

// Transformer language models.
export { Llama, injectAt } from './nn/llama.js';
export type { ForwardOptions, ForwardResult } from './nn/llama.js';
export { Gpt2 } from './nn/gpt2.js';
export { Weights } from './nn/weights.js';
export { KVCache } from './nn/kv-cache.js';
export { generate, sequenceLogProbs } from './nn/generate.js';
export type { GenerateOptions, Generation } from './nn/generate.js';
export { sampleToken, argmax, logProbOf } from './nn/sample.js';
export { loadModel, loadTokenizerFor, resolveTokenizerPath, saveHf, build as buildModel } from './nn/load.js';
export type { AnyModel, LoadedModel } from './nn/load.js';
export type { LanguageModel } from './nn/model.js';
export { saveCheckpoint, loadCheckpoint } from './nn/checkpoint.js';
export type { Checkpoint } from './nn/checkpoint.js';

// Natural Language Autoencoders.
export { NLA, loadNLA } from './nla/nla.js';
// Reference NLA packages (kitft/natural_language_autoencoders): av/ + ar/ with nla_meta.yaml.
export { loadReferenceNLA, referencePairIn, referenceAvPrompt, referenceArIds, EXPLANATION_RE } from './nla/reference.js';
export type { ReferencePair, ReferenceInfo } from './nla/reference.js';
export { readModelSidecar, parseModelSidecar } from './nla/reference-sidecar.js';
export { writeReferencePair } from './nla/reference-export.js';
export { writeBaseDataset, readReferenceDataset, datasetId } from './nla/reference-dataset.js';
export type { BaseRow, DatasetExtraction, DatasetRows } from './nla/reference-dataset.js';
export { writeReferenceStages, referenceSplit, INJECT } from './nla/reference-stages.js';
export type { StageRow, StageContract } from './nla/reference-stages.js';
export { llama2cToHfTokenizer } from './io/llama2c-hf-tokenizer.js';
export { readVectors, readNpy } from './nla/vectors.js';
export type { Vectors } from './nla/vectors.js';
export { injectionCheck, nlaCheckParts } from './nla/check.js';
export type { InjectionCheck, CheckParts } from './nla/check.js';
export type { ModelSidecar } from './nla/reference-sidecar.js';
export { ChatTemplate, readChatTemplate } from './io/chat-template.js';
export type { ChatMessage } from './io/chat-template.js';
export { knownBuffer } from './nn/buffers.js';
export type { NlaMeta, TokenExplanation } from './nla/nla.js';
export { Verbalizer } from './nla/av.js';
export type { AvStyle } from './nla/av.js';
export { Reconstructor } from './nla/ar.js';
export { COMPACT_PROMPTS, DEFAULT_PROMPTS, avPrompt, arIds, parseExplanation } from './nla/prompts.js';
export type { PromptSpec } from './nla/prompts.js';
export { normalizedMse, normalizedMseHost, normalizeToSqrtD } from './nla/loss.js';
export { fve, mseNormalized, varianceNormalized, normalizeRows } from './nla/fve.js';
export { fveToken, fveBigram, fveFloor } from './nla/baselines.js';
export { probeAccuracy, trainProbe } from './nla/probe.js';
export { probeAccuracyGpu } from './nla/probe-gpu.js';
export { groupAdvantages, grpoLoss } from './nla/grpo.js';
export { generateStories, cutPoints, describeCut, scoreFields, fieldsChance } from './nla/corpus.js';
export { ActivationStore, StoreWriter } from './nla/store.js';
export { extractActivations, extractToStore } from './nla/extract.js';
export { trainArSft, trainAvSft } from './nla/sft.js';
export { trainRl } from './nla/rl.js';
export type { RlOptions, RlMetrics, RewardKind } from './nla/rl.js';
export { evaluate } from './nla/evaluate.js';
export { runDemo, DEMO_DEFAULTS } from './nla/demo.js';
export type { DemoOptions, DemoResult } from './nla/demo.js';
export { summarizeCorpus, readSummariesJsonl, readTextCorpus } from './nla/datagen.js';
