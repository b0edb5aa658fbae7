export { rng, gaussian, SeededRng } from '../util/rng.js';
