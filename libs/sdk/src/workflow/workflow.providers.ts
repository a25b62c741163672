import type { Provider } from '@nestjs/common';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from '../participant/participant.options.js';
import { HttpWorkflowCoordinator } from './http-workflow-coordinator.js';
import { WorkflowClient } from './workflow-client.js';
import { WORKFLOW_COORDINATOR } from './workflow-coordinator.js';
import { WorkflowRunner } from './workflow-runner.js';
import { WorkflowExplorer } from './workflow.explorer.js';
import { WorkflowRegistry } from './workflow.registry.js';

/**
 * The workflow host's providers, part of DtxParticipantModule: a workflow is hosted by a
 * participant (PROTOCOL.md 3.7), registered with its actions and resumed through its routes.
 * The coordinator is the participant's own (`coordinatorUrl`, `apiKey`).
 */
export const WORKFLOW_PROVIDERS: Provider[] = [
  WorkflowRegistry,
  WorkflowExplorer,
  WorkflowRunner,
  WorkflowClient,
  {
    provide: WORKFLOW_COORDINATOR,
    inject: [PARTICIPANT_OPTIONS],
    useFactory: (options: ParticipantModuleOptions) => new HttpWorkflowCoordinator({ coordinatorUrl: options.coordinatorUrl, apiKey: options.apiKey }),
  },
];
