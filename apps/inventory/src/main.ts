import { runParticipantService } from '@app/demo-support';
import { AppModule } from './app.module.js';

runParticipantService('inventory', { PORT: 4004, PARTICIPANT_NAME: 'inventory' }, (env) => AppModule.forEnv(env));
