import { exitOnStartFailure, startCoordinator } from './start.js';

startCoordinator().catch(exitOnStartFailure);
