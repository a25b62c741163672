import { runParticipantService } from '@app/demo-support';
import { AppModule } from './app.module.js';

runParticipantService('order', { PORT: 4003, PARTICIPANT_NAME: 'order' }, (env) => AppModule.forEnv(env));
