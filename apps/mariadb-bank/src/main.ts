import { runParticipantService } from '@app/demo-support';
import { AppModule } from './app.module.js';

runParticipantService('mariadb-bank', { PORT: 4004, PARTICIPANT_NAME: 'bank-b' }, (env) => AppModule.forEnv(env));
