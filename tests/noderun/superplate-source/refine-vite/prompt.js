// No questions of its own: the project name comes from the command line.
module.exports = { prompts: [] };
