"""What a study leaves on disk (or at a URI), and nothing else.

``layout`` owns every path of a study folder; ``records`` reads and writes its JSON records;
``generations`` the samples table; ``checkpoint`` a trial's adapter + optimizer state;
``remote`` URI storage; ``saved_space`` the lenient reader of a saved search space;
``guards`` which paths an output may never overwrite.
"""
