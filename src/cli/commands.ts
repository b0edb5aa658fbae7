// Subcommands beyond `info`, registered in one place.
import type { Command } from 'commander';
import { registerDemo } from './demo.js';

export function registerAll(program: Command): void {
  registerDemo(program);
}
