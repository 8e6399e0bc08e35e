// Every corpus recipe. A language adds its own file beside python.ts and one line here.
import type { Recipe } from '../recipe.js';
import { NODEJS_RECIPES } from './nodejs.js';
import { PYTHON_RECIPES } from './python.js';

export const RECIPES: readonly Recipe[] = [...PYTHON_RECIPES, ...NODEJS_RECIPES];
