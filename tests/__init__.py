from tests.installed_copy import prefer_a_copy_in_the_working_folder

# Mutation testing runs the tests inside a copy laid out as installed (tests/mutation).
prefer_a_copy_in_the_working_folder()
