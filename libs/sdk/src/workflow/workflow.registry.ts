import { Injectable } from '@nestjs/common';
import { NAME_PATTERN, type Json } from '@nest-dtx/protocol';
import type { WorkflowContext } from './workflow-context.js';

/** A workflow the host runs: its name and the function, bound to its provider. */
export interface WorkflowDefinition {
  name: string;
  run: (context: WorkflowContext<Json>) => Promise<unknown>;
  /** `OrderWorkflows.placeOrder`, for messages. */
  declaredAt: string;
}

/** The workflows this participant hosts, by name: filled by WorkflowExplorer at start-up, read by the runner and the registration. */
@Injectable()
export class WorkflowRegistry {
  private readonly workflows = new Map<string, WorkflowDefinition>();

  add(definition: WorkflowDefinition): void {
    if (!NAME_PATTERN.test(definition.name)) {
      throw new Error(`${definition.declaredAt}: workflow name "${definition.name}" is not a participant action name (${NAME_PATTERN.source})`);
    }
    const existing = this.workflows.get(definition.name);
    if (existing) throw new Error(`workflow "${definition.name}" is declared twice (${existing.declaredAt} and ${definition.declaredAt})`);
    this.workflows.set(definition.name, definition);
  }

  get(name: string): WorkflowDefinition | undefined {
    return this.workflows.get(name);
  }

  names(): string[] {
    return [...this.workflows.keys()];
  }

  clear(): void {
    this.workflows.clear();
  }
}
