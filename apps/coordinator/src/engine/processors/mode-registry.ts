import { Injectable } from '@nestjs/common';
import type { Mode } from '@nest-dtx/protocol';
import { ModeNotSupportedError } from '../errors.js';
import type { ModeProcessor } from './mode-processor.js';

/** The plug-in of each mode this coordinator runs, filled by ModeExplorer as the application starts. */
@Injectable()
export class ModeRegistry {
  private readonly byMode = new Map<Mode, ModeProcessor>();

  /** One plug-in a mode: a second one is a wiring mistake, refused at start-up rather than one silently winning. */
  register(mode: Mode, processor: ModeProcessor): void {
    const registered = this.byMode.get(mode);
    if (registered && registered !== processor) {
      throw new Error(`mode ${mode} has two plug-ins: ${registered.constructor.name} and ${processor.constructor.name}`);
    }
    this.byMode.set(mode, processor);
  }

  get(mode: Mode): ModeProcessor {
    const processor = this.byMode.get(mode);
    if (!processor) throw new ModeNotSupportedError(mode);
    return processor;
  }

  get modes(): Mode[] {
    return [...this.byMode.keys()];
  }
}
