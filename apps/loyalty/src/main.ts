import { runParticipantService } from '@app/demo-support';
import { AppModule } from './app.module.js';

runParticipantService('loyalty', { PORT: 4005, PARTICIPANT_NAME: 'loyalty' }, (env) => AppModule.forEnv(env));
