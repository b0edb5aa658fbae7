// Subcommands beyond `info`, registered in one place.
import type { Command } from 'commander';

export function registerAll(_program: Command): void {}
